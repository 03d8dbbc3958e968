package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/harness"
)

// report holds the figures of a run and prints them.
type report struct {
	o       *options
	streams *streamLoad
	rest    *restLoad

	base, after       snapshot
	peakHeap, peakRSS int64
	settledIn         time.Duration
	serviceErrors     int64
	interrupted       error
}

func (r *report) settings() string {
	s := fmt.Sprintf("%d users", r.o.users)
	if r.o.Quick {
		s += " (-quick)"
	}
	return s
}

// back reports whether snap is within the slack of the baseline.
func (r *report) back(snap snapshot) bool {
	return r.goroutinesOK(snap) && r.fdsOK(snap) && r.procsOK(snap)
}

func (r *report) goroutinesOK(s snapshot) bool { return s.goroutines <= r.base.goroutines+r.o.goSlack }
func (r *report) fdsOK(s snapshot) bool        { return s.fds <= r.base.fds+r.o.fdSlack }
func (r *report) procsOK(s snapshot) bool {
	return s.procs <= r.base.procs && s.marked <= r.base.marked
}
func (r *report) heapOK() bool {
	return r.after.heap <= r.base.heap+int64(r.o.heapSlackMB)<<20
}

// problems lists why the run failed; none when it passed.
func (r *report) problems() []string {
	var p []string
	if r.interrupted != nil {
		p = append(p, "the run was cut short: "+r.interrupted.Error())
	}
	if n := r.streams.errs.total(); n > 0 {
		p = append(p, fmt.Sprintf("%d streamed turns failed", n))
	}
	if n := r.rest.errs.total(); n > 0 {
		p = append(p, fmt.Sprintf("%d REST requests failed", n))
	}
	if !r.goroutinesOK(r.after) {
		p = append(p, "goroutines did not come back to the baseline")
	}
	if !r.fdsOK(r.after) {
		p = append(p, "open descriptors did not come back to the baseline")
	}
	if !r.procsOK(r.after) {
		p = append(p, "processes were left behind")
	}
	if !r.heapOK() {
		p = append(p, "the heap in use grew by more than -heap-slack")
	}
	return p
}

func (r *report) failed() bool { return len(r.problems()) > 0 }

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) + " s"
	default:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 3, 64) + " ms"
	}
}

func fmtMB(b int64) string { return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) + " MiB" }

func perSec(n int64, d time.Duration) string {
	if d <= 0 {
		return "—"
	}
	return strconv.FormatFloat(float64(n)/d.Seconds(), 'f', 1, 64)
}

func mark(ok bool) string {
	if ok {
		return "ok"
	}
	return "FAIL"
}

func (r *report) print(out io.Writer) {
	o, st, rl := r.o, r.streams, r.rest
	t := harness.NewTable(out)
	row := t.Row
	quantiles := func(name string, h *harness.Histogram) {
		row(name, fmtDur(h.Quantile(0.5)), fmtDur(h.Quantile(0.99)), fmtDur(h.Quantile(0.999)), fmtDur(h.Max()))
	}

	limit := o.turnLimit
	if limit == "" {
		limit = "default"
	}
	fmt.Fprintf(out, "\n1. Streamed turns — %d concurrent × %d rounds, %d events @ %d/s per turn, RATE_LIMIT_TURN=%s\n\n",
		o.turns, o.rounds, o.events, o.rate, limit)
	t.Header("metric", "value")
	row("turns completed", fmt.Sprintf("%d of %d in %s", st.completed.Load(), st.attempted.Load(), fmtDur(st.elapsed)))
	row("turns/s", perSec(st.completed.Load(), st.elapsed))
	row("events/s", perSec(st.chunks.Load(), st.elapsed))
	row("429 (turn limit)", strconv.FormatInt(st.limited.Load(), 10))
	row("errors", strconv.Itoa(st.errs.total()))
	t.Flush()
	fmt.Fprintln(out)
	t.Header("completed turns", "p50", "p99", "p99.9", "max")
	quantiles("time to first byte", &st.ttfb)
	quantiles("turn duration", &st.duration)
	t.Flush()

	refresh := "no refresh"
	if o.refreshEvery > 0 {
		refresh = "one refresh per " + o.refreshEvery.String()
	}
	fmt.Fprintf(out, "\n2. REST — %d workers for %s, default limits, %s\n\n", o.workers, o.duration, refresh)
	t.Header("route", "requests", "2xx", "429", "errors", "req/s", "p50", "p99", "p99.9", "max")
	var total, ok, limited, failed int64
	for i := range rl.routes {
		s := &rl.routes[i]
		o, l, f := s.ok.Load(), s.limited.Load(), s.failed.Load()
		total, ok, limited, failed = total+o+l+f, ok+o, limited+l, failed+f
		row(routeNames[i], strconv.FormatInt(o+l+f, 10), strconv.FormatInt(o, 10), strconv.FormatInt(l, 10),
			strconv.FormatInt(f, 10), perSec(o+l+f, rl.elapsed),
			fmtDur(s.lat.Quantile(0.5)), fmtDur(s.lat.Quantile(0.99)), fmtDur(s.lat.Quantile(0.999)), fmtDur(s.lat.Max()))
	}
	row("overall", strconv.FormatInt(total, 10), strconv.FormatInt(ok, 10), strconv.FormatInt(limited, 10),
		strconv.FormatInt(failed, 10), perSec(total, rl.elapsed),
		fmtDur(rl.all.Quantile(0.5)), fmtDur(rl.all.Quantile(0.99)), fmtDur(rl.all.Quantile(0.999)), fmtDur(rl.all.Max()))
	row("overall, 2xx only", strconv.FormatInt(ok, 10), "", "", "", perSec(ok, rl.elapsed),
		fmtDur(rl.okOnly.Quantile(0.5)), fmtDur(rl.okOnly.Quantile(0.99)), fmtDur(rl.okOnly.Quantile(0.999)), fmtDur(rl.okOnly.Max()))
	t.Flush()

	b, a := r.base, r.after
	fmt.Fprintf(out, "\n3. Resources — baseline after warm-up, after the loads (settled in %s)\n\n", fmtDur(r.settledIn))
	t.Header("resource", "baseline", "after", "peak", "allowed", "mark")
	row("goroutines", strconv.Itoa(b.goroutines), strconv.Itoa(a.goroutines), "—",
		"≤ "+strconv.Itoa(b.goroutines+o.goSlack), mark(r.goroutinesOK(a)))
	row("open file descriptors", strconv.Itoa(b.fds), strconv.Itoa(a.fds), "—",
		"≤ "+strconv.Itoa(b.fds+o.fdSlack), mark(r.fdsOK(a)))
	row("processes below this one", fmt.Sprintf("%d (%d marked)", b.procs, b.marked),
		fmt.Sprintf("%d (%d marked)", a.procs, a.marked), "—", fmt.Sprintf("≤ %d (%d)", b.procs, b.marked), mark(r.procsOK(a)))
	row("heap in use", fmtMB(b.heap), fmtMB(a.heap), fmtMB(r.peakHeap),
		fmt.Sprintf("≤ %s", fmtMB(b.heap+int64(o.heapSlackMB)<<20)), mark(r.heapOK()))
	row("RSS", fmtMB(b.rss), fmtMB(a.rss), fmtMB(r.peakRSS), "—", "info")
	t.Flush()

	fmt.Fprintln(out, "\nErrors by kind (429s are counted apart, above):")
	lines := append(prefixed("turns: ", st.errs.lines()), prefixed("REST: ", rl.errs.lines())...)
	if len(lines) == 0 {
		fmt.Fprintln(out, "  none")
	}
	for _, l := range lines {
		fmt.Fprintln(out, "  "+l)
	}
	fmt.Fprintf(out, "Service ERROR log records: %d\n", r.serviceErrors)

	if p := r.problems(); len(p) > 0 {
		fmt.Fprintln(out, "\nResult: FAIL — "+strings.Join(p, "; "))
	} else {
		fmt.Fprintln(out, "\nResult: PASS")
	}
	fmt.Fprint(out, notes)
}

func prefixed(p string, lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = p + l
	}
	return out
}

const notes = `
How it is measured:
  - One process hosts the service (config.Load, app.New, the local gateway and
    the real Lambda adapters on a loopback port), the S3 and Apple stand-ins
    and the clients; DynamoDB Local and the fake CLI processes share the same
    CPUs. Figures vary with whatever else the machine runs.
  - Turns: time to first byte is from just before the POST to the first body
    byte (the ping the turn sends at once); duration is to the end of the
    body. Only completed turns are timed. A turn completes when it answers
    200, ends with "complete" and every chunk the fake wrote arrived.
    turns/s and events/s are completed turns and chunk events received over
    the load's wall time. The first round opens a conversation (POST
    /chat/stream, which also runs the title CLI), later rounds resume it.
  - REST: workers send the next request as soon as one is answered; latency
    is from just before the request to its last body byte, for every
    answered request (2xx and 429). Any other status or a transport error is
    a failure. POST /auth/refresh waits until the user's requests in flight
    are done and blocks new ones until the rotated token is in place.
  - p99.9 of fewer than 1000 samples is the maximum.
  - Resources: the baseline is taken after sign-in and warm-up; both readings
    follow closing every idle keep-alive connection (client side to the
    gateway and to DynamoDB Local, server side on the gateway and the S3
    stand-in) and a GC. Goroutines are runtime.NumGoroutine; descriptors
    are the entries of /proc/self/fd; processes are every live or unreaped
    descendant of this process (a child subreaper, so what a CLI leaves
    behind is re-parented here), "marked" those carrying the CLI run marker.
    Heap in use is live objects plus free space in in-use spans; RSS is
    VmRSS, its peak also VmHWM; peaks are sampled every 100 ms.
`
