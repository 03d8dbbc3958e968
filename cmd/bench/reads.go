package main

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
)

// The REST reads measured one at a time, each in two rows, then GET
// /chat's rate in two more.
var readPaths = []string{"/chat", "/chat/{id}"}

const (
	mListRate1  = "GET /chat requests/s, 1 at a time"
	mListRate16 = "GET /chat requests/s, 16 at once"
)

func readP50Row(path string) string   { return "GET " + path + " p50" }
func readTripsRow(path string) string { return "GET " + path + " DynamoDB round trips" }

// reads sends the REST reads as the bench's user, one at a time, each
// route for o.readFor (the DynamoDB calls of a request are then its own),
// then GET /chat from 16 workers at once.
func (b *bench) reads(ctx context.Context) error {
	r, err := b.turn(ctx, claudetest.Script("normal", "text", "read back"), 0, nil)
	if err != nil {
		return err
	}
	u := &user{token: b.token, convs: []string{r.ConvID}}
	for _, path := range readPaths {
		lat, perSecond, shares, err := b.hammer(ctx, u, path, 1)
		if err != nil {
			return err
		}
		var longest samples
		for _, s := range shares {
			longest.add(s.longest)
		}
		trip := longest.at(0.5)
		b.atMost(readP50Row(path), lat.at(0.5), trip+1500*time.Microsecond, fmt.Sprintf(" (a round trip %s + 1.5 ms)", fmtMS(trip)), lat.p50p90())
		b.trips(readTripsRow(path), shares)
		if path == "/chat" {
			b.set(mListRate1, fmt.Sprintf("%.0f/s", perSecond), "", markInfo)
		}
	}
	_, perSecond, _, err := b.hammer(ctx, u, "/chat", 16)
	b.set(mListRate16, fmt.Sprintf("%.0f/s", perSecond), "", markInfo)
	b.notes = append(b.notes, fmt.Sprintf(`REST reads: one user, a read limit that never refuses, GET /chat (the first page of the bench user's conversations) and GET /chat/{id} (one turn's messages) each for %s one at a time: p50 to the last body byte, against a round trip = the p50 of each request's longest DynamoDB call; round trips counted as for the first byte, up to the answer's end. Then GET /chat from 16 workers at once for %[1]s; issue 16's "before" was 197 requests/s at 16.`, b.o.readFor))
	return err
}

// hammer sends GET path as u from workers at once, each as soon as its
// previous answer is in, for o.readFor. It returns the latencies, the
// answers per second and, with one worker, each request's DynamoDB share.
func (b *bench) hammer(ctx context.Context, u *user, path string, workers int) (*samples, float64, []dbShare, error) {
	l := &load{s: b.s, users: []*user{u}}
	i := slices.IndexFunc(routes[:], func(rt route) bool { return rt.method == http.MethodGet && rt.path == path })
	var shares []dbShare
	start := time.Now()
	work(ctx, start, workers, b.o.readFor, 1, func(rng *mrand.Rand) {
		sent := time.Now()
		l.one(ctx, u, i, rng)
		if workers == 1 {
			shares = append(shares, b.db.within(sent, time.Now()))
		}
	})
	t := &l.tallies[i]
	switch f := l.failures(); {
	case len(f) > 0:
		return nil, 0, nil, errors.New(strings.Join(f, "; "))
	case t.limited.Load() > 0:
		return nil, 0, nil, fmt.Errorf("GET %s: %d answers of 429 under a read limit meant never to refuse", path, t.limited.Load())
	case t.ok.Load() == 0:
		return nil, 0, nil, fmt.Errorf("GET %s: no answer", path)
	}
	return &t.lat, float64(t.ok.Load()) / time.Since(start).Seconds(), shares, nil
}
