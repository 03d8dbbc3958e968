package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"runtime"
	"slices"
	"strings"
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
	mTTFBInDB       = "DynamoDB in flight before first byte p50"
	mTTFBTrips      = "DynamoDB round trips before first byte"
	mSpawn          = "fake CLI spawn to first line p50"
	mChunk50        = "time to first chunk p50"
	mRSSIdle        = "RSS idle"
	mRSSLoad        = "RSS peak, concurrent streams"
	mCancel         = "cancel to terminal event"
	mProcessesAfter = "processes left after the run"
)

// relayRate is the steady rate of the relay-overhead turn and of each
// concurrent stream, the rate the relay's figures are compared at.
const relayRate = 1000

// phase is one measurement and the rows it fills.
type phase struct {
	run  func(context.Context) error
	rows []string
}

func (b *bench) phases() []phase {
	var reads, inits, sizes []string
	for _, path := range readPaths {
		reads = append(reads, readP50Row(path), readTripsRow(path))
	}
	for _, fn := range functions {
		inits, sizes = append(inits, initRow(fn)), append(sizes, sizeRow(fn))
	}
	return []phase{
		{b.warmupAndIdle, []string{mRSSIdle}},
		{b.firstByte, []string{mTTFB50, mTTFBInDB, mTTFBNoDB, mTTFBTrips, mSpawn, mChunk50}},
		{b.reads, append(reads, mListRate1, mListRate16)},
		{b.relayOverhead, []string{mRelayP50, mRelayP99}},
		{b.flood, []string{mFloodRate, mAllocsE2E}},
		{b.concurrent, []string{mRSSLoad}},
		{b.cancels, []string{mCancel}},
		{b.eventLog, []string{mLogWrites, mLogRate, mWatcher50, mWatcher99}},
		{b.approvals, []string{mApproval50, mApproval99}},
		{b.imports, []string{mImport, mImportUpload}},
		{b.emulated, append(inits, rssRows...)},
		{b.sizes, sizes},
	}
}

// run runs every phase, each to its rows, and returns the settings line.
func (b *bench) run(ctx context.Context) string {
	g, err := b.s.signIn(ctx, "bench")
	b.token, b.userID = g.SessionToken, g.UserID
	for _, p := range b.phases() {
		switch {
		case err != nil:
			b.fail(p.rows, err)
		case ctx.Err() != nil:
			b.fail(p.rows, fmt.Errorf("not run: %w", ctx.Err()))
		default:
			b.fail(p.rows, p.run(ctx))
		}
	}
	b.notes = append(b.notes, notes...)
	o := b.o
	return fmt.Sprintf("relay %d ev @ %d/s, flood %d ev, %d TTFB turns, REST reads %s each, %d streams × %d ev @ %d/s, event log %d ev @ %d/s, %d live approvals",
		o.relayN, relayRate, o.floodN, o.ttfbTurns, o.readFor, o.streams, o.streamN, relayRate, o.logN, o.logRate, o.approvalN)
}

func fmtMS(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/1e6) }
func fmtMB(b int64) string         { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }

// memAtMost records a resident size, detail in brackets after it, against
// an upper target.
func (b *bench) memAtMost(metric string, rss, target int64, detail string) {
	if rss == 0 {
		b.set(metric, "n/a (no /proc/self/clear_refs or status)", "≤ "+fmtMB(target), markSkip)
		return
	}
	b.set(metric, fmtMB(rss)+" ("+detail+")", "≤ "+fmtMB(target), judge(rss <= target, markMiss))
}

// trips records the sequential DynamoDB round trips of requests, their
// p50 against one: on two cores shared with DynamoDB Local, a call meant to
// run beside another now and then starts only once that one ended.
func (b *bench) trips(metric string, shares []dbShare) {
	var counts []int
	more, calls := 0, 0
	for _, s := range shares {
		counts, calls = append(counts, s.trips), max(calls, s.calls)
		if s.trips > 1 {
			more++
		}
	}
	slices.Sort(counts)
	p50 := counts[(len(counts)-1)/2]
	b.set(metric, fmt.Sprintf("%d (more in %d of %d, at most %d; up to %d calls each)", p50, more, len(counts), slices.Max(counts), calls),
		"1 at p50", judge(p50 == 1, markMiss))
}

// turn streams prompt on a new conversation and checks that it completed
// with n chunks (with at least one if n is 0).
func (b *bench) turn(ctx context.Context, prompt string, n int, lat *samples) (Turn, error) {
	conv, err := b.s.newConversation(ctx, b.userID)
	if err != nil {
		return Turn{}, err
	}
	return b.turnOn(ctx, conv, prompt, n, lat, nil)
}

// turnOn is turn on conversation conv; atFirstByte is Stream's.
func (b *bench) turnOn(ctx context.Context, conv, prompt string, n int, lat *samples, atFirstByte func()) (Turn, error) {
	r, err := b.s.Stream(ctx, "/chat/"+conv+"/stream", prompt, b.token, lat, atFirstByte)
	switch {
	case err != nil:
		return r, err
	case r.Terminal != ovrlrd.OutcomeComplete:
		return r, fmt.Errorf("turn ended with %s %q", r.Terminal, r.Message)
	case r.Chunks == 0 || n > 0 && r.Chunks != n:
		return r, fmt.Errorf("%d of %d events arrived", r.Chunks, n)
	}
	return r, nil
}

func (b *bench) warmupAndIdle(ctx context.Context) error {
	prompts := slices.Repeat([]string{claudetest.Script("normal", "text", "warm-up")}, b.o.warmup)
	for _, prompt := range append(prompts, claudetest.Script("flood", "n", min(2000, b.o.floodN))) {
		if _, err := b.turn(ctx, prompt, 0, nil); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	settle()
	m := readMem("self")
	b.memAtMost(mRSSIdle, m.rss, 30<<20, fmt.Sprintf("anon %s + file %s", fmtMB(m.anon), fmtMB(m.file)))
	return nil
}

// firstByte times turns one after another, each on a new conversation,
// from just before the POST to the first body byte (the ping sent once the
// pre-stream transaction is done) and to the first chunk; the service's
// DynamoDB calls before the first byte are its database share. The fake
// CLI's own spawn time, apart, is what the first chunk may add.
func (b *bench) firstByte(ctx context.Context) error {
	prompt := claudetest.Script("normal", "text", "first chunk")
	var ttfb, chunk, rest, between, tx, inFlight samples
	var shares []dbShare
	for range b.o.ttfbTurns {
		r, err := b.turn(ctx, prompt, 0, nil)
		if err != nil {
			return err
		}
		db := b.db.within(r.Sent, r.FirstByte)
		ttfb.add(r.FirstByte.Sub(r.Sent))
		rest.add(r.FirstByte.Sub(r.Sent) - db.inFlight)
		chunk.add(r.FirstChunk.Sub(r.Sent))
		between.add(b.db.within(r.Sent, r.FirstChunk).inFlight - db.inFlight)
		tx.add(db.tx)
		inFlight.add(db.inFlight)
		shares = append(shares, db)
	}
	spawn, err := spawnTime(ctx, b.s.cli, prompt, b.o.ttfbTurns)
	if err != nil {
		return err
	}
	b.atMost(mTTFB50, ttfb.at(0.5), tx.at(0.5)+1500*time.Microsecond,
		fmt.Sprintf(" (a transaction %s + 1.5 ms)", fmtMS(tx.at(0.5))), ttfb.p50p90())
	b.set(mTTFBInDB, inFlight.p50p90(), "", markInfo)
	b.set(mTTFBNoDB, rest.p50p90(), "", markInfo)
	b.trips(mTTFBTrips, shares)
	b.set(mSpawn, fmtMS(spawn), "", markInfo)
	b.atMost(mChunk50, chunk.at(0.5), ttfb.at(0.5)+spawn+time.Millisecond, " (TTFB + spawn + 1 ms)",
		fmt.Sprintf("%s (DynamoDB in flight after the first byte %s)", fmtMS(chunk.at(0.5)), fmtMS(between.at(0.5))))
	return nil
}

// spawnTime execs the fake CLI at cli as the service runs it, prompt on its
// stdin, n times one after another, and returns the p50 from exec to its
// first line on stdout.
func spawnTime(ctx context.Context, cli, prompt string, n int) (time.Duration, error) {
	var took samples
	for range n {
		cmd := exec.CommandContext(ctx, cli, "-p", "--output-format", "stream-json", "--verbose")
		cmd.Stdin = strings.NewReader(prompt)
		out, err := cmd.StdoutPipe()
		if err != nil {
			return 0, err
		}
		start := time.Now()
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		_, err = bufio.NewReader(out).ReadBytes('\n')
		took.add(time.Since(start))
		_, _ = io.Copy(io.Discard, out)
		if err = cmp.Or(err, cmd.Wait()); err != nil {
			return 0, fmt.Errorf("the fake CLI: %w", err)
		}
	}
	return took.at(0.5), nil
}

// relayOverhead: the fake CLI writes texts at a steady rate, each the time
// it was written; each chunk's delay is its arrival minus that stamp.
func (b *bench) relayOverhead(ctx context.Context) error {
	lat := samples{ds: make([]time.Duration, 0, b.o.relayN)}
	if _, err := b.turn(ctx, claudetest.Script("rate", "n", b.o.relayN, "rate", relayRate), b.o.relayN, &lat); err != nil {
		return err
	}
	b.set(mRelayP50, fmtMS(lat.at(0.50)), "", markInfo)
	b.atMost(mRelayP99, lat.at(0.99), 500*time.Microsecond, "", fmt.Sprintf("%s (p99.9 %s, max %s)",
		fmtMS(lat.at(0.99)), fmtMS(lat.at(0.999)), fmtMS(lat.at(1))))
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
	r, err := b.s.Stream(ctx, "/chat/"+conv+"/stream", claudetest.Script("flood", "n", b.o.floodN), b.token, nil, nil)
	runtime.ReadMemStats(&m1)
	if err != nil {
		return err
	}
	if r.Chunks != b.o.floodN {
		return fmt.Errorf("%d of %d events arrived", r.Chunks, b.o.floodN)
	}
	if r.Terminal != ovrlrd.OutcomeComplete {
		// Every event was relayed, which is what is measured here.
		b.notes = append(b.notes, fmt.Sprintf("the flat-out turn (%d events, one %s answer) ended with %s %q: see the service's log",
			b.o.floodN, fmtMB(int64(b.o.floodN)*19), r.Terminal, r.Message))
	}
	rate := float64(r.Chunks) / r.LastChunk.Sub(time.Unix(0, r.FirstStamp)).Seconds()
	whole := float64(r.Chunks) / r.LastChunk.Sub(r.Sent).Seconds()
	b.set(mFloodRate, fmt.Sprintf("%.0f ev/s (%.0f ev/s incl. spawn)", rate, whole), "≥ 100000 ev/s", judge(rate >= 100000, markMiss))
	b.set(mAllocsE2E, fmt.Sprintf("%.2f (%.0f B/event)", float64(m1.Mallocs-m0.Mallocs)/float64(r.Chunks),
		float64(m1.TotalAlloc-m0.TotalAlloc)/float64(r.Chunks)), "", markInfo)
	return nil
}

// concurrent: the peak RSS while concurrent streams run, each opening its
// conversation as the app does.
func (b *bench) concurrent(ctx context.Context) error {
	l := &load{s: b.s, users: []*user{{token: b.token}}}
	settle()
	peakOf := resetPeak("self")
	l.streams(ctx, b.o.streams, 1, b.o.streamN, relayRate)
	if f := l.failures(); len(f) > 0 {
		return errors.New(strings.Join(f, "; "))
	}
	b.memAtMost(mRSSLoad, peakOf(), 50<<20, "VmHWM")
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
		var sent time.Time
		var cancelErr error
		// A cancel that fails leaves the turn to its idle timeout.
		r, err := b.s.Stream(ctx, "/chat/"+conv+"/stream", claudetest.Script("silent"), b.token, nil, func() {
			sent = time.Now()
			status, body, err := b.s.Call(ctx, http.MethodPost, "/chat/"+conv+"/cancel", "", b.token)
			if err == nil && status != http.StatusOK {
				err = fmt.Errorf("POST /chat/%s/cancel: %d %s", conv, status, body)
			}
			cancelErr = err
		})
		if err = cmp.Or(cancelErr, err); err != nil {
			return err
		}
		if r.Terminal != ovrlrd.OutcomeError || r.Message != "Cancelled" {
			return fmt.Errorf("a cancelled turn ended with %s %q", r.Terminal, r.Message)
		}
		took = append(took, r.End.Sub(sent))
	}
	slices.Sort(took)
	b.atMost(mCancel, took[2], 2*time.Second, "", fmt.Sprintf("%s (slowest of 3; fastest %s)", fmtMS(took[2]), fmtMS(took[0])))
	return nil
}

var notes = []string{
	`One process hosts the service (the three functions built by their own constructors, the local gateway, the real Lambda adapters), its loopback stand-ins and the client, which keeps only counters and the delays it times. RSS is this process's VmRSS: anon is heap and stacks, file is pages of this executable; the fake CLI processes and DynamoDB Local are not counted. "RSS idle" follows warm-up turns, runtime.GC and debug.FreeOSMemory.`,
	`Relay overhead = client arrival time minus the wall-clock stamp the fake CLI wrote into each text: the whole relay, TCP and the client's parse.`,
	`TTFB and first chunk: from just before the POST, one turn at a time, each on a conversation of its own made beforehand (DynamoDB Local shares the CPUs); such a turn's conversation is read beside its start's transaction, and only the turn's run, not its first byte, waits for that read. The DynamoDB calls timed are those that started before the first byte: "in flight" is the wall time during which at least one was (the calls overlap, so their durations do not add up), "minus DynamoDB" the rest of each turn's time to first byte; round trips are the longest chain of those that ended before it, each started after the one before it ended (one running beside the others counts with them); "a transaction" is the p50 of the TransactWriteItems among them.`,
	`Spawn: the fake CLI exec'd here, as the service runs it (stream-json, the same prompt on stdin), from exec to its first line on stdout, one at a time.`,
	`allocs/event: runtime Mallocs over the flat-out turn per chunk relayed.`,
}
