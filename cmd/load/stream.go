package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/devkit/harness"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// errorSet counts failures by kind and keeps the first message of each.
type errorSet struct {
	mu      sync.Mutex
	count   map[string]int
	example map[string]string
}

func newErrorSet() *errorSet {
	return &errorSet{count: map[string]int{}, example: map[string]string{}}
}

func (e *errorSet) add(kind, example string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.count[kind]++
	if _, ok := e.example[kind]; !ok {
		e.example[kind] = oneLine(example, 160)
	}
}

func (e *errorSet) total() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, c := range e.count {
		n += c
	}
	return n
}

// lines lists "kind: count (e.g. example)", most frequent first.
func (e *errorSet) lines() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	kinds := make([]string, 0, len(e.count))
	for k := range e.count {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool {
		if e.count[kinds[i]] != e.count[kinds[j]] {
			return e.count[kinds[i]] > e.count[kinds[j]]
		}
		return kinds[i] < kinds[j]
	})
	out := make([]string, 0, len(kinds))
	for _, k := range kinds {
		out = append(out, fmt.Sprintf("%s: %d (e.g. %s)", k, e.count[k], e.example[k]))
	}
	return out
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

// streamLoad is the first load: concurrent streamed turns, each worker on
// its own conversation (a new one in the first round, resumed after).
type streamLoad struct {
	ttfb, duration harness.Histogram
	attempted      atomic.Int64
	completed      atomic.Int64
	chunks         atomic.Int64 // chunk events received, by every turn
	limited        atomic.Int64 // 429: the turn limit
	errs           *errorSet
	elapsed        time.Duration
}

func newStreamLoad() *streamLoad { return &streamLoad{errs: newErrorSet()} }

// run starts o.turns workers at once; each runs o.rounds turns in a row.
func (l *streamLoad) run(ctx context.Context, o *options, c *harness.Client, users []*user) {
	prompt := claudetest.Script("rate", "n", o.events, "rate", o.rate)
	perTurn := time.Minute + 3*time.Duration(float64(o.events)/float64(o.rate)*float64(time.Second))
	start := time.Now()
	var wg sync.WaitGroup
	for i := range o.turns {
		u := users[i%len(users)]
		wg.Go(func() {
			conv := ""
			for range o.rounds {
				if ctx.Err() != nil {
					return
				}
				path := "/chat/stream"
				if conv != "" {
					path = "/chat/" + conv + "/stream"
				}
				u.mu.RLock()
				token := u.token
				u.mu.RUnlock()
				tctx, cancel := context.WithTimeout(ctx, perTurn)
				l.attempted.Add(1)
				r, err := c.Stream(tctx, path, prompt, token, nil, nil)
				cancel()
				l.chunks.Add(int64(r.Chunks))
				if l.record(o, path, r, err) && conv == "" {
					conv = r.ConvID
					u.addConv(conv)
				}
			}
		})
	}
	wg.Wait()
	l.elapsed = time.Since(start)
}

// record classifies one turn and reports whether it completed.
func (l *streamLoad) record(o *options, path string, r harness.Turn, err error) bool {
	route := "POST /chat/{id}/stream"
	if path == "/chat/stream" {
		route = "POST /chat/stream"
	}
	switch {
	case r.Status == http.StatusTooManyRequests:
		l.limited.Add(1)
		return false
	case r.ConnError || (err != nil && r.Status == 0):
		kind := route + ": transport error"
		if errors.Is(err, context.DeadlineExceeded) {
			kind = route + ": timed out"
		}
		l.errs.add(kind, fmt.Sprint(err))
		return false
	case r.Status != http.StatusOK:
		l.errs.add(fmt.Sprintf("%s: HTTP %d", route, r.Status), r.Message)
		return false
	case err != nil:
		l.errs.add(route+": no terminal event", err.Error())
		return false
	case r.Terminal != ovrlrd.OutcomeComplete:
		l.errs.add(route+": ended with "+string(r.Terminal), r.Message)
		return false
	case r.Chunks != o.events:
		l.errs.add(route+": events lost", fmt.Sprintf("%d of %d chunks arrived", r.Chunks, o.events))
		return false
	}
	l.completed.Add(1)
	l.ttfb.Add(r.FirstByte.Sub(r.Sent))
	l.duration.Add(r.End.Sub(r.Sent))
	return true
}
