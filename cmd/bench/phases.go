package main

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// The rows other engineers compare between runs: keep their names and
// meaning.
const (
	mRelayP50       = "relay overhead p50"
	mRelayP99       = "relay overhead p99"
	mFloodRate      = "flat-out throughput"
	mAllocsE2E      = "allocs/event, server+client"
	mTTFB50         = "time to first byte p50"
	mTTFBNoDB       = "time to first byte p50 minus DynamoDB"
	mChunk50        = "time to first chunk p50"
	mRSSIdle        = "RSS idle"
	mRSSLoad        = "RSS peak, concurrent streams"
	mCancel         = "cancel to terminal event"
	mProcessesAfter = "processes left after the run"
)

// relayRate is the steady rate of the relay-overhead turn and of each
// concurrent stream, the rate the relay's figures are compared at.
const relayRate = 1000

type bench struct {
	report
	o             *options
	s             *stack
	c             *Client
	userID, token string
	db            dbTimer
}

// phase is one measurement and the rows it fills.
type phase struct {
	run  func(context.Context) error
	rows []string
}

func (b *bench) phases() []phase {
	var inits, sizes []string
	for _, fn := range functions {
		inits, sizes = append(inits, initRow(fn)), append(sizes, sizeRow(fn))
	}
	return []phase{
		{b.warmupAndIdle, []string{mRSSIdle}},
		{b.firstByte, []string{mTTFB50, mTTFBNoDB, mChunk50}},
		{b.relayOverhead, []string{mRelayP50, mRelayP99}},
		{b.flood, []string{mFloodRate, mAllocsE2E}},
		{b.concurrent, []string{mRSSLoad}},
		{b.cancels, []string{mCancel}},
		{b.coldStarts, inits},
		{b.sizes, sizes},
	}
}

// run runs every phase, each to its rows, and returns the settings line.
func (b *bench) run(ctx context.Context) string {
	g, err := b.s.signIn(ctx, b.c, "bench")
	b.token, b.userID = g.SessionToken, g.UserID
	for _, p := range b.phases() {
		if err == nil && ctx.Err() != nil {
			err = fmt.Errorf("not run: %w", ctx.Err())
		}
		perr := err
		if perr == nil {
			perr = p.run(ctx)
		}
		if perr != nil {
			b.fail(p.rows, perr)
		}
	}
	b.notes = append(b.notes, notes...)
	o := b.o
	return fmt.Sprintf("relay %d ev @ %d/s, flood %d ev, %d TTFB turns, %d streams × %d ev @ %d/s",
		o.relayN, relayRate, o.floodN, o.ttfbTurns, o.streams, o.streamN, relayRate)
}

func fmtMS(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 3, 64) + " ms"
}
func fmtMB(b int64) string { return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) + " MB" }

// memAtMost records a resident size against an upper target.
func (b *bench) memAtMost(metric string, rss, target int64, value string) {
	if rss == 0 {
		b.set(metric, "n/a (no /proc/self/clear_refs or status)", "≤ "+fmtMB(target), markSkip)
		return
	}
	atMost(&b.report, metric, rss, target, fmtMB, value)
}

// turn runs one streamed turn to completion on a new conversation.
func (b *bench) turn(ctx context.Context, prompt string, lat *Histogram) (Turn, error) {
	conv, err := b.s.newConversation(ctx, b.userID)
	if err != nil {
		return Turn{}, err
	}
	r, err := b.stream(ctx, conv, prompt, lat)
	if err == nil && r.Terminal != ovrlrd.OutcomeComplete {
		err = fmt.Errorf("turn ended with %s %q", r.Terminal, r.Message)
	}
	return r, err
}

func (b *bench) stream(ctx context.Context, conv, prompt string, lat *Histogram) (Turn, error) {
	return b.c.Stream(ctx, "/chat/"+conv+"/stream", prompt, b.token, lat, nil)
}

func (b *bench) warmupAndIdle(ctx context.Context) error {
	for range b.o.warmup {
		if _, err := b.turn(ctx, claudetest.Script("normal", "text", "warm-up"), nil); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	if _, err := b.turn(ctx, claudetest.Script("flood", "n", min(2000, b.o.floodN)), nil); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	settle()
	m := readMem()
	b.memAtMost(mRSSIdle, m.rss, 30<<20, fmt.Sprintf("%s (anon %s + file %s)", fmtMB(m.rss), fmtMB(m.anon), fmtMB(m.file)))
	return nil
}

// firstByte times turns one after another, each on a new conversation,
// from just before the POST to the first body byte (the ping sent once the
// pre-stream transaction is done) and to the first chunk; the service's
// DynamoDB calls before the first byte are its database share.
func (b *bench) firstByte(ctx context.Context) error {
	var ttfb, chunk, db, rest Histogram
	for range b.o.ttfbTurns {
		conv, err := b.s.newConversation(ctx, b.userID)
		if err != nil {
			return err
		}
		b.db.within(time.Time{}, time.Time{}) // forget the set-up's calls
		r, err := b.stream(ctx, conv, claudetest.Script("normal", "text", "first chunk"), nil)
		if err == nil && (r.Terminal != ovrlrd.OutcomeComplete || r.Chunks == 0) {
			err = fmt.Errorf("turn ended with %s %q after %d chunks", r.Terminal, r.Message, r.Chunks)
		}
		if err != nil {
			return err
		}
		first := r.FirstByte.Sub(r.Sent)
		inDB := b.db.within(r.Sent, r.FirstByte)
		ttfb.Add(first)
		db.Add(inDB)
		rest.Add(first - inDB)
		chunk.Add(r.FirstChunk.Sub(r.Sent))
	}
	atMost(&b.report, mTTFB50, ttfb.Quantile(0.50), 3*time.Millisecond, fmtMS, fmt.Sprintf("%s (DynamoDB %s + rest %s; p90 %s)",
		fmtMS(ttfb.Quantile(0.50)), fmtMS(db.Quantile(0.5)), fmtMS(rest.Quantile(0.5)), fmtMS(ttfb.Quantile(0.9))))
	b.set(mTTFBNoDB, fmtMS(rest.Quantile(0.50)), "", markInfo)
	b.set(mChunk50, fmtMS(chunk.Quantile(0.50)), "CLI spawn", markInfo)
	return nil
}

// relayOverhead: the fake CLI writes texts at a steady rate, each the time
// it was written; each chunk's delay is its arrival minus that stamp.
func (b *bench) relayOverhead(ctx context.Context) error {
	var lat Histogram
	r, err := b.turn(ctx, claudetest.Script("rate", "n", b.o.relayN, "rate", relayRate), &lat)
	if err != nil {
		return err
	}
	if r.Stamped != b.o.relayN {
		return fmt.Errorf("%d of %d events arrived", r.Stamped, b.o.relayN)
	}
	b.set(mRelayP50, fmtMS(lat.Quantile(0.50)), "", markInfo)
	atMost(&b.report, mRelayP99, lat.Quantile(0.99), 500*time.Microsecond, fmtMS, fmt.Sprintf("%s (p99.9 %s, max %s)",
		fmtMS(lat.Quantile(0.99)), fmtMS(lat.Quantile(0.999)), fmtMS(lat.Max())))
	return nil
}

// flood: the fake CLI writes as fast as it can. The rate is chunks over
// the time from the first stamp to the last arrival; allocations are the
// process's (server and client) over the turn, per chunk relayed.
func (b *bench) flood(ctx context.Context) error {
	conv, err := b.s.newConversation(ctx, b.userID)
	if err != nil {
		return err
	}
	settle()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	r, err := b.stream(ctx, conv, claudetest.Script("flood", "n", b.o.floodN), nil)
	runtime.ReadMemStats(&m1)
	if err != nil {
		return err
	}
	if r.Stamped != b.o.floodN {
		return fmt.Errorf("%d of %d events arrived", r.Stamped, b.o.floodN)
	}
	if r.Terminal != ovrlrd.OutcomeComplete {
		// Every event was relayed, which is what is measured here.
		b.notes = append(b.notes, fmt.Sprintf("the flat-out turn (%d events, one %s answer) ended with %s %q: see the service's log",
			b.o.floodN, fmtMB(int64(b.o.floodN)*19), r.Terminal, r.Message))
	}
	rate := float64(r.Stamped) / r.LastChunk.Sub(time.Unix(0, r.FirstStamp)).Seconds()
	whole := float64(r.Stamped) / r.LastChunk.Sub(r.Sent).Seconds()
	mark := markPass
	if rate < 100000 {
		mark = markMiss
	}
	b.set(mFloodRate, fmt.Sprintf("%.0f ev/s (%.0f ev/s incl. spawn)", rate, whole), "≥ 100000 ev/s", mark)
	b.set(mAllocsE2E, fmt.Sprintf("%.2f (%.0f B/event)", float64(m1.Mallocs-m0.Mallocs)/float64(r.Chunks),
		float64(m1.TotalAlloc-m0.TotalAlloc)/float64(r.Chunks)), "", markInfo)
	return nil
}

// concurrent: the peak RSS while concurrent streams run.
func (b *bench) concurrent(ctx context.Context) error {
	convs := make([]string, b.o.streams)
	for i := range convs {
		var err error
		if convs[i], err = b.s.newConversation(ctx, b.userID); err != nil {
			return err
		}
	}
	settle()
	peakKnown := resetPeak()
	errs := make([]error, len(convs))
	var wg sync.WaitGroup
	prompt := claudetest.Script("rate", "n", b.o.streamN, "rate", relayRate)
	for i, conv := range convs {
		wg.Go(func() {
			r, err := b.stream(ctx, conv, prompt, nil)
			if err == nil && r.Terminal != ovrlrd.OutcomeComplete {
				err = fmt.Errorf("turn ended with %s %q", r.Terminal, r.Message)
			} else if err == nil && r.Stamped != b.o.streamN {
				err = fmt.Errorf("%d of %d events arrived", r.Stamped, b.o.streamN)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := cmp.Or(errs...); err != nil {
		return err
	}
	var peak int64
	if peakKnown {
		peak = readMem().hwm
	}
	b.memAtMost(mRSSLoad, peak, 50<<20, fmtMB(peak)+" (VmHWM)")
	return nil
}

// cancels times turns that only a cancel ends, each cancelled once its
// first byte arrived: from sending POST /chat/{id}/cancel to the end of the
// turn's stream, the slowest of three.
func (b *bench) cancels(ctx context.Context) error {
	var took []time.Duration
	for range 3 {
		conv, err := b.s.newConversation(ctx, b.userID)
		if err != nil {
			return err
		}
		// A cancel that fails leaves the turn running: stop reading it then.
		tctx, stop := context.WithCancel(ctx)
		var sent time.Time
		var cancelErr error
		r, err := b.c.Stream(tctx, "/chat/"+conv+"/stream", claudetest.Script("silent"), b.token, nil, func() {
			sent = time.Now()
			status, body, err := b.c.Call(tctx, http.MethodPost, "/chat/"+conv+"/cancel", "", b.token, false)
			if err == nil && status != http.StatusOK {
				err = fmt.Errorf("POST /chat/%s/cancel: %d %s", conv, status, body)
			}
			if cancelErr = err; err != nil {
				stop()
			}
		})
		stop()
		if err = cmp.Or(cancelErr, err); err != nil {
			return err
		}
		if r.Terminal != ovrlrd.OutcomeError || r.Message != "Cancelled" {
			return fmt.Errorf("a cancelled turn ended with %s %q", r.Terminal, r.Message)
		}
		took = append(took, r.End.Sub(sent))
	}
	slices.Sort(took)
	atMost(&b.report, mCancel, took[2], 2*time.Second, fmtMS, fmt.Sprintf("%s (slowest of 3; fastest %s)", fmtMS(took[2]), fmtMS(took[0])))
	return nil
}

var notes = []string{
	`One process hosts the service (the three functions built by their own constructors, the local gateway, the real Lambda adapters), its loopback stand-ins and the client, which keeps only counters and a 30 KiB histogram. RSS is this process's VmRSS: anon is heap and stacks, file is pages of this executable; the fake CLI processes and DynamoDB Local are not counted. "RSS idle" follows warm-up turns, runtime.GC and debug.FreeOSMemory.`,
	`Relay overhead = client arrival time minus the wall-clock stamp the fake CLI wrote into each text: the whole relay, TCP and the client's parse.`,
	`TTFB and first chunk: from just before the POST, one turn at a time, each on a new conversation (DynamoDB Local shares the CPUs).`,
	`allocs/event: runtime Mallocs over the flat-out turn per chunk relayed.`,
}
