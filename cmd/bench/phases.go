package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/devkit/harness"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/sse"
)

// Metric names: the rows of the table, in order.
const (
	mRelayP50       = "relay overhead p50"
	mRelayP99       = "relay overhead p99"
	mFloodRate      = "flat-out throughput"
	mFloodQueue     = "flat-out queueing p99"
	mFloodRSS       = "flat-out peak RSS while relaying"
	mFloodRSSAll    = "flat-out peak RSS incl. the save"
	mTTFB50         = "time to first byte p50"
	mTTFB90         = "time to first byte p90"
	mTTFBNoDB       = "time to first byte p50 minus DynamoDB"
	mChunk50        = "time to first chunk p50"
	mChunk90        = "time to first chunk p90"
	mRSSIdle        = "RSS idle"
	mRSSLoad        = "RSS peak, concurrent streams"
	mLoadP99        = "relay overhead p99 under load"
	mAllocsE2E      = "allocs/event, server+client"
	mAllocsServer   = "allocs/event, server only"
	mServerRate     = "server-only throughput"
	mProcessesAfter = "processes left after the run"
)

// metrics lists every row the table always has.
var metrics = []string{
	mRelayP50, mRelayP99, mFloodRate, mFloodQueue, mFloodRSS, mFloodRSSAll, mTTFB50, mTTFB90, mTTFBNoDB, mChunk50, mChunk90,
	mRSSIdle, mRSSLoad, mLoadP99, mAllocsE2E, mAllocsServer, mServerRate, mProcessesAfter,
}

// Marks.
const (
	markPass  = "pass"
	markMiss  = "MISS"
	markInfo  = "info"
	markError = "ERROR"
	markSkip  = "skipped"
)

type row struct {
	value, target, mark string
}

type bench struct {
	o      *options
	s      *stack
	rows   map[string]row
	notes  []string
	failed bool
}

const ms = float64(time.Millisecond)

func fmtMS(d time.Duration) string { return strconv.FormatFloat(float64(d)/ms, 'f', 3, 64) + " ms" }
func fmtMB(b int64) string         { return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) + " MB" }

func (b *bench) set(metric, value, target, mark string) {
	if b.rows == nil {
		b.rows = map[string]row{}
	}
	b.rows[metric] = row{value, target, mark}
	if mark == markError {
		b.failed = true
	}
}

// atMost records a duration against an upper target.
func (b *bench) atMost(metric string, got, target time.Duration, extra string) {
	mark := markPass
	if got > target {
		mark = markMiss
	}
	b.set(metric, fmtMS(got)+extra, "≤ "+fmtMS(target), mark)
}

// memAtMost records a resident size against an upper target; value
// describes it.
func (b *bench) memAtMost(metric string, got, target int64, value string) {
	if got == 0 {
		b.set(metric, "n/a (no /proc/self/status)", "≤ "+fmtMB(target), markSkip)
		return
	}
	mark := markPass
	if got > target {
		mark = markMiss
	}
	b.set(metric, value, "≤ "+fmtMB(target), mark)
}

func (b *bench) fail(metrics []string, err error) {
	for _, m := range metrics {
		if _, done := b.rows[m]; !done {
			b.set(m, "error: "+err.Error(), "", markError)
		}
	}
}

func (b *bench) settings() string {
	o := b.o
	s := fmt.Sprintf("relay %d ev @ %d/s, flood %d ev, %d TTFB turns, %d streams × %d ev @ %d/s",
		o.relayN, o.relayRate, o.floodN, o.ttfbTurns, o.streams, o.loadN, o.loadRate)
	if o.Quick {
		s += " (-quick)"
	}
	return s
}

func (b *bench) runPhases(ctx context.Context) {
	type phase struct {
		run     func(context.Context) error
		metrics []string
	}
	phases := []phase{
		{b.warmupAndIdle, []string{mRSSIdle}},
		{b.firstByte, []string{mTTFB50, mTTFB90, mTTFBNoDB, mChunk50, mChunk90}},
		{b.relayOverhead, []string{mRelayP50, mRelayP99}},
		{b.flood, []string{mFloodRate, mFloodQueue, mFloodRSS, mFloodRSSAll, mAllocsE2E}},
		{b.load, []string{mRSSLoad, mLoadP99}},
		{b.serverOnly, []string{mAllocsServer, mServerRate}},
		{b.cliRunner, []string{mCLIDelivery50, mHugeLineAlloc}},
		{b.cancels, []string{mCancel}},
	}
	for _, p := range phases {
		if err := ctx.Err(); err != nil {
			b.fail(p.metrics, fmt.Errorf("not run: %w", err))
			continue
		}
		if err := p.run(ctx); err != nil {
			b.fail(p.metrics, err)
		}
	}
}

// turn runs one streamed turn on a new conversation.
func (b *bench) turn(ctx context.Context, prompt string, lat *harness.Histogram) (harness.Turn, error) {
	conv, err := b.s.conversation(ctx)
	if err != nil {
		return harness.Turn{}, err
	}
	r, err := b.s.stream(ctx, conv, prompt, lat, nil)
	if err == nil && r.Terminal != ovrlrd.OutcomeComplete {
		err = fmt.Errorf("turn ended with %s %q", r.Terminal, r.Message)
	}
	return r, err
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
	harness.Settle()
	m, _ := harness.ReadMem()
	b.memAtMost(mRSSIdle, m.RSS, 30<<20, memString(m))
	return nil
}

func (b *bench) firstByte(ctx context.Context) error {
	var ttfb, chunk, db, rest harness.Histogram
	b.s.db.take(1)
	before := map[string]int{}
	for range b.o.ttfbTurns {
		conv, err := b.s.conversation(ctx)
		if err != nil {
			return err
		}
		b.s.db.within(time.Time{}, time.Time{}, nil) // forget the set-up's calls
		r, err := b.s.stream(ctx, conv, claudetest.Script("normal", "text", "first chunk"), nil, nil)
		if err == nil && r.Terminal != ovrlrd.OutcomeComplete {
			err = fmt.Errorf("turn ended with %s %q", r.Terminal, r.Message)
		}
		if err != nil {
			return err
		}
		if r.Chunks == 0 {
			return fmt.Errorf("a turn sent no chunk")
		}
		first := r.FirstByte.Sub(r.Sent)
		inDB := b.s.db.within(r.Sent, r.FirstByte, before)
		ttfb.Add(first)
		db.Add(inDB)
		rest.Add(first - inDB)
		chunk.Add(r.FirstChunk.Sub(r.Sent))
	}
	b.atMost(mTTFB50, ttfb.Quantile(0.50), 3*time.Millisecond,
		fmt.Sprintf(" (DynamoDB %s + rest %s)", fmtMS(db.Quantile(0.5)), fmtMS(rest.Quantile(0.5))))
	b.set(mTTFB90, fmtMS(ttfb.Quantile(0.90)), "", markInfo)
	b.set(mTTFBNoDB, fmtMS(rest.Quantile(0.50)), "", markInfo)
	b.set(mChunk50, fmtMS(chunk.Quantile(0.50)), "CLI spawn", markInfo)
	b.set(mChunk90, fmtMS(chunk.Quantile(0.90)), "CLI spawn", markInfo)
	b.notes = append(b.notes,
		"DynamoDB calls before the first byte, per turn: "+perTurn(before, b.o.ttfbTurns),
		"DynamoDB calls per TTFB turn, whole turn: "+b.s.db.take(b.o.ttfbTurns))
	return nil
}

func (b *bench) relayOverhead(ctx context.Context) error {
	var lat harness.Histogram
	r, err := b.turn(ctx, claudetest.Script("rate", "n", b.o.relayN, "rate", b.o.relayRate), &lat)
	if err != nil {
		return err
	}
	if r.Stamped != b.o.relayN {
		return fmt.Errorf("%d of %d events arrived", r.Stamped, b.o.relayN)
	}
	b.set(mRelayP50, fmtMS(lat.Quantile(0.50)), "", markInfo)
	b.atMost(mRelayP99, lat.Quantile(0.99), 500*time.Microsecond,
		fmt.Sprintf(" (p99.9 %s, max %s)", fmtMS(lat.Quantile(0.999)), fmtMS(lat.Max())))
	return nil
}

func (b *bench) flood(ctx context.Context) error {
	var lat harness.Histogram
	conv, err := b.s.conversation(ctx)
	if err != nil {
		return err
	}
	harness.Settle()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	peak := harness.Watch(5 * time.Millisecond)
	r, err := b.s.stream(ctx, conv, claudetest.Script("flood", "n", b.o.floodN), &lat, nil)
	peakBytes, sampled, _ := peak.End()
	runtime.ReadMemStats(&m1)
	if err != nil {
		return err
	}
	if r.Stamped != b.o.floodN {
		return fmt.Errorf("%d of %d events arrived", r.Stamped, b.o.floodN)
	}
	if r.Terminal != ovrlrd.OutcomeComplete {
		// Every event was relayed, which is what is measured here; how the
		// turn ended is reported below the table.
		b.notes = append(b.notes, fmt.Sprintf("the flat-out turn (%d events, one %s answer) ended with %s %q: see the service's log",
			b.o.floodN, fmtMB(int64(b.o.floodN)*19), r.Terminal, r.Message))
	}
	span := r.LastChunk.Sub(time.Unix(0, r.FirstStamp))
	rate := float64(r.Stamped) / span.Seconds()
	whole := float64(r.Stamped) / r.LastChunk.Sub(r.Sent).Seconds()
	mark := markPass
	if rate < 100000 {
		mark = markMiss
	}
	b.set(mFloodRate, fmt.Sprintf("%.0f ev/s (%.0f ev/s incl. spawn)", rate, whole), "≥ 100000 ev/s", mark)
	b.atMost(mFloodQueue, lat.Quantile(0.99), 20*time.Millisecond,
		fmt.Sprintf(" (p50 %s, max %s)", fmtMS(lat.Quantile(0.5)), fmtMS(lat.Max())))
	relaying := peak.Until(r.LastChunk)
	b.memAtMost(mFloodRSS, relaying.RSS, 50<<20, memString(relaying))
	b.set(mFloodRSSAll, peakString(peakBytes, sampled), "", markInfo)
	b.set(mAllocsE2E, fmt.Sprintf("%.2f (%.0f B/event)",
		float64(m1.Mallocs-m0.Mallocs)/float64(r.Chunks), float64(m1.TotalAlloc-m0.TotalAlloc)/float64(r.Chunks)), "", markInfo)
	return nil
}

func (b *bench) load(ctx context.Context) error {
	convs := make([]string, b.o.streams)
	for i := range convs {
		c, err := b.s.conversation(ctx)
		if err != nil {
			return err
		}
		convs[i] = c
	}
	harness.Settle()
	peak := harness.Watch(5 * time.Millisecond)
	lats := make([]harness.Histogram, len(convs))
	errs := make([]error, len(convs))
	var wg sync.WaitGroup
	last := make([]time.Time, len(convs)) // each stream's last chunk
	prompt := claudetest.Script("rate", "n", b.o.loadN, "rate", b.o.loadRate)
	for i, conv := range convs {
		wg.Go(func() {
			r, err := b.s.stream(ctx, conv, prompt, &lats[i], nil)
			last[i] = r.LastChunk
			switch {
			case err != nil:
				errs[i] = err
			case r.Terminal != ovrlrd.OutcomeComplete:
				errs[i] = fmt.Errorf("turn ended with %s %q", r.Terminal, r.Message)
			case r.Stamped != b.o.loadN:
				errs[i] = fmt.Errorf("%d of %d events arrived", r.Stamped, b.o.loadN)
			}
		})
	}
	wg.Wait()
	peakBytes, sampled, _ := peak.End()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	var all harness.Histogram
	for i := range lats {
		all.Merge(&lats[i])
	}
	b.memAtMost(mRSSLoad, peakBytes, 50<<20, peakString(peakBytes, sampled))
	relaying := peak.Until(slices.MaxFunc(last, time.Time.Compare))
	b.notes = append(b.notes, fmt.Sprintf("RSS under load: largest sample %s while the streams relayed (until the last chunk), %s over the whole phase (incl. the saves after the turns)",
		memString(relaying), fmtMB(peakBytes)))
	b.set(mLoadP99, fmtMS(all.Quantile(0.99)), "", markInfo)
	return nil
}

// serverOnly times turn.Service.Run, the server's own part of the relay
// (the CLI's pipe, the parser, the translator, the outbox and the SSE
// encoder), with a writer that discards: no HTTP, no client. One op is one
// event; the turn's fixed costs (spawn, lease renewals, save) are spread
// over the events.
func (b *bench) serverOnly(ctx context.Context) error {
	if b.o.serverN == 0 {
		b.set(mAllocsServer, "not run (-server-n 0)", "", markSkip)
		b.set(mServerRate, "not run (-server-n 0)", "", markSkip)
		return nil
	}
	// testing.Benchmark reads -test.benchtime: "Nx" runs exactly N ops
	// (after a first run of one). Put back what was there (in a test).
	testing.Init()
	old := flag.Lookup("test.benchtime").Value.String()
	if err := flag.Set("test.benchtime", strconv.Itoa(b.o.serverN)+"x"); err != nil {
		return err
	}
	defer func() { _ = flag.Set("test.benchtime", old) }()
	var (
		runErr  error
		kind    ovrlrd.OutcomeKind
		message string
	)
	res := testing.Benchmark(func(tb *testing.B) {
		tb.ReportAllocs()
		tb.StopTimer()
		conv, err := b.s.conversation(ctx)
		if err != nil {
			runErr = err
			return
		}
		j, err := b.s.App.Turns.Begin(ctx, ovrlrd.TurnRequest{UserID: b.s.userID, ConversationID: conv,
			Message: claudetest.Script("flood", "n", tb.N)})
		if err != nil {
			runErr = err
			return
		}
		tb.StartTimer()
		last := &lastEvent{Writer: sse.NewWriter(io.Discard)}
		b.s.App.Turns.Run(ctx, j, last)
		tb.StopTimer()
		kind, message = ovrlrd.OutcomeKind(last.Type), last.Message
	})
	if runErr != nil {
		return runErr
	}
	if res.N == 0 {
		return fmt.Errorf("the benchmark did not run")
	}
	if kind != ovrlrd.OutcomeComplete {
		b.notes = append(b.notes, fmt.Sprintf("the server-only turn (%d events) ended with %s %q", res.N, kind, message))
	}
	b.set(mAllocsServer, fmt.Sprintf("%d (%d B/event, %d events)", res.AllocsPerOp(), res.AllocedBytesPerOp(), res.N), "", markInfo)
	b.set(mServerRate, fmt.Sprintf("%.0f ev/s", 1e9/float64(res.NsPerOp())), "", markInfo)
	if res.NsPerOp() == 0 {
		b.set(mServerRate, fmt.Sprintf("%d events in %v", res.N, res.T), "", markInfo)
	}
	return nil
}

// checkProcesses counts this process's children once everything is
// stopped: CLI processes, what they started (re-parented here) or
// DynamoDB Local if started here. Any found is reported, then killed.
func (b *bench) checkProcesses() {
	// Turns whose client went away finish in the background, as in Lambda;
	// on a loaded machine that can take a few seconds after the last phase.
	left := harness.Children()
	for deadline := time.Now().Add(15 * time.Second); len(left) > 0 && time.Now().Before(deadline); left = harness.Children() {
		time.Sleep(100 * time.Millisecond)
	}
	if len(left) == 0 {
		b.set(mProcessesAfter, "0", "0", markPass)
		return
	}
	for _, pid := range left {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	b.set(mProcessesAfter, fmt.Sprintf("%d (pids %v, killed)", len(left), left), "0", markError)
}

func (b *bench) print(out io.Writer) {
	t := harness.NewTable(out)
	t.Header("metric", "value", "target", "mark")
	for _, m := range metrics {
		r, ok := b.rows[m]
		if !ok {
			r = row{"not measured", "", markError}
		}
		t.Row(m, r.value, cmp.Or(r.target, "—"), r.mark)
	}
	t.Flush()
	if len(b.notes) > 0 {
		fmt.Fprintln(out, "\nMeasured along the way:")
		for _, n := range b.notes {
			fmt.Fprintln(out, "  - "+n)
		}
	}
	fmt.Fprintln(out, `
Notes:
  - One process hosts the server (app.New + the local gateway + the real Lambda
    adapters on a loopback port), its loopback stand-ins (Apple keys, S3) and
    the client, which parses each stream as it arrives in one 16 KiB buffer
    and keeps only counters and a 30 KiB histogram. RSS is this process's
    VmRSS from /proc/self/status: anon is heap and stacks, file is pages of
    this executable (which links all three functions and the stand-ins); the
    fake CLI processes and DynamoDB Local are separate and not counted.
    "RSS idle" follows warm-up turns, runtime.GC and debug.FreeOSMemory.
  - Latency/queueing = client arrival time minus the wall-clock stamp the fake
    CLI wrote into each text: pipe, parser, turn loop, outbox, SSE writer, the
    Lambda streaming adapter, the gateway relay, TCP and the client's parse.
  - TTFB and first chunk are timed from just before the POST, one turn at a
    time, each on a new conversation (auth, rate limit and the pre-stream
    transaction in DynamoDB Local included; DynamoDB Local shares the CPUs).
  - allocs/event, server+client: runtime Mallocs over the flat-out turn divided
    by the chunks relayed. Server only: testing.Benchmark of turn.Service.Run
    with an SSE writer to io.Discard, one op = one event.`)
}

// lastEvent is an SSE writer that keeps the last event it sent: the
// terminal one, once a turn has ended.
type lastEvent struct {
	*sse.Writer
	sse.Event
}

func (l *lastEvent) Send(e sse.Event) error {
	l.Event = e
	return l.Writer.Send(e)
}
