// Command bench drives the whole service in this process as `make dev`
// wires it (the fake Claude CLI as CLAUDE_PATH) and prints one table: each
// row's value, target and mark.
//
//	make bench                  # relay, first byte, RSS, cold starts, sizes
//	make load                   # -load: concurrent turns and a REST mix
//	make bench BENCH_FLAGS=-quick / make load LOAD_FLAGS=-quick
//
// The bench's targets are reported, not enforced. The exit status is 1
// when a row is marked ERROR: a phase failed or lost events, a request
// failed other than with a 429, or resources (goroutines, descriptors,
// the heap, processes) did not come back after the load; 2 on bad flags.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/ovrlrd/cloud/internal/claude"
)

type options struct {
	quick, load                                                     bool
	timeout                                                         time.Duration
	logLevel, cli                                                   string
	relayN, floodN, ttfbTurns, warmup, streams, streamN, coldStarts int
	users, turns, rounds, events, rate, workers                     int
	duration, refreshEvery                                          time.Duration
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// parseFlags reads -quick first, so that it picks the other defaults and
// flags given explicitly still win. ok false: exit with code (0 after
// -help).
func parseFlags(args []string, errOut io.Writer) (o options, code int, ok bool) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(errOut)
	quick := slices.ContainsFunc(args, func(a string) bool {
		return slices.Contains([]string{"quick", "quick=true"}, strings.TrimLeft(a, "-"))
	})
	pick := func(full, q int) int {
		if quick {
			return q
		}
		return full
	}
	fs.BoolVar(&o.quick, "quick", quick, "smaller counts for a fast check (flags given explicitly still win)")
	fs.BoolVar(&o.load, "load", false, "run the load (make load) instead of the bench")
	fs.DurationVar(&o.timeout, "timeout", 170*time.Second, "the whole run")
	fs.StringVar(&o.logLevel, "log-level", "warn", "the service's log level (logs go to stderr)")
	fs.StringVar(&o.cli, "cli", "", "the fake CLI to run (default: built from internal/claude/testdata/fakeclaude)")
	fs.IntVar(&o.relayN, "relay-n", pick(5000, 1000), "bench: events of the 1000/s (relay overhead) turn")
	fs.IntVar(&o.floodN, "flood-n", pick(200000, 20000), "bench: events of the flat-out turn")
	fs.IntVar(&o.ttfbTurns, "ttfb-turns", pick(50, 10), "bench: turns timed for the first byte and the first chunk")
	fs.IntVar(&o.warmup, "warmup", pick(5, 2), "bench: untimed turns first (connections, DynamoDB Local's JIT)")
	fs.IntVar(&o.streams, "streams", 20, "bench: concurrent 1000/s streams of the RSS-under-load phase")
	fs.IntVar(&o.streamN, "load-n", pick(3000, 500), "bench: events of each concurrent stream")
	fs.IntVar(&o.coldStarts, "cold-starts", pick(10, 3), "bench: cold starts of each function under the emulator (0 skips them)")
	fs.IntVar(&o.users, "users", 5, "load: signed-in users the turns and the requests are spread over")
	fs.IntVar(&o.turns, "turns", pick(50, 20), "load: concurrent streamed turns")
	fs.IntVar(&o.rounds, "rounds", pick(2, 1), "load: turns each stream worker runs in a row on its conversation")
	fs.IntVar(&o.events, "events", pick(600, 300), "load: texts the fake CLI writes per turn")
	fs.IntVar(&o.rate, "rate", pick(200, 300), "load: texts per second the fake CLI writes")
	fs.IntVar(&o.workers, "workers", 32, "load: concurrent workers of the REST mix (default limits)")
	fs.DurationVar(&o.duration, "duration", time.Duration(pick(60, 5))*time.Second, "load: length of the REST mix")
	fs.DurationVar(&o.refreshEvery, "refresh-every", 5*time.Second, "load: one POST /auth/refresh per this interval (0: none)")
	err := fs.Parse(args)
	switch {
	case err != nil:
	case fs.NArg() > 0:
		err = fmt.Errorf("unexpected arguments %q", fs.Args())
	case min(o.relayN, o.floodN, o.ttfbTurns, o.streams, o.streamN, o.users, o.turns, o.rounds, o.events, o.rate, o.workers) < 1 ||
		min(o.warmup, o.coldStarts) < 0 || o.timeout <= 0 || o.duration <= 0 || o.refreshEvery < 0:
		err = errors.New("counts, rates and durations must be positive (-warmup, -cold-starts, -refresh-every may be 0)")
	}
	if errors.Is(err, flag.ErrHelp) {
		return o, 0, false
	}
	if err != nil {
		fmt.Fprintln(errOut, "bench:", err)
		return o, 2, false
	}
	return o, 0, true
}

func run(ctx context.Context, args []string, out, errOut io.Writer) int {
	o, code, ok := parseFlags(args, errOut)
	if !ok {
		return code
	}
	// As the stream function is, so that what a CLI leaves behind is
	// re-parented here, counted and reaped.
	if err := claude.BecomeSubreaper(); err != nil {
		fmt.Fprintln(errOut, "bench:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	start := time.Now()
	name, env := "bench", map[string]string{"RATE_LIMIT_TURN": "999999/1m", "RATE_LIMIT_READ": "999999/1m", "RATE_LIMIT_WRITE": "999999/1m"}
	if o.load {
		// Only turns are freed: the REST mix meets the default limits.
		name, env = "load", map[string]string{"RATE_LIMIT_TURN": "999999/1m"}
	}
	b := &bench{o: &o}
	s, err := newStack(ctx, &o, name, errOut, env, b.db.option())
	if err != nil {
		fmt.Fprintln(errOut, "bench: start:", err)
		return 1
	}
	c := s.newClient(64 + o.turns + o.workers)
	b.s, b.c = s, c
	var settings string
	if o.load {
		settings = runLoad(ctx, &o, s, c, &b.report)
	} else {
		settings = b.run(ctx)
	}
	if err := ctx.Err(); err != nil {
		b.set("whole run", "cut short: "+err.Error(), "within -timeout", markError)
	}
	c.HTTP.CloseIdleConnections()
	s.close()
	b.checkProcesses()
	if o.quick {
		settings += " (-quick)"
	}
	fmt.Fprintf(out, "\nOvrlrd %s — %s %s/%s, GOMAXPROCS=%d, %s\n\n", name,
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), settings)
	b.print(out)
	fmt.Fprintf(out, "\ntotal time %.1f s\n", time.Since(start).Seconds())
	if b.failed() {
		return 1
	}
	return 0
}

const (
	markPass  = "pass"
	markMiss  = "MISS"
	markInfo  = "info"
	markError = "ERROR"
	markSkip  = "skipped"
)

type row struct{ metric, value, target, mark string }

// report is the table both modes print, in the order rows were set.
type report struct {
	rows  []row
	notes []string
}

func (r *report) set(metric, value, target, mark string) {
	r.rows = append(r.rows, row{metric, value, target, mark})
}

func (r *report) has(metric string) bool {
	return slices.ContainsFunc(r.rows, func(x row) bool { return x.metric == metric })
}

func (r *report) failed() bool {
	return slices.ContainsFunc(r.rows, func(x row) bool { return x.mark == markError })
}

// fail marks every row of a failed phase it had not filled.
func (r *report) fail(metrics []string, err error) {
	for _, m := range metrics {
		if !r.has(m) {
			r.set(m, "error: "+err.Error(), "", markError)
		}
	}
}

// atMost records a value against an upper target.
func atMost[T time.Duration | int64](r *report, metric string, got, target T, format func(T) string, value string) {
	mark := markPass
	if got > target {
		mark = markMiss
	}
	r.set(metric, value, "≤ "+format(target), mark)
}

func (r *report) print(out io.Writer) {
	t := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(t, "metric\tvalue\ttarget\tmark\n------\t-----\t------\t----")
	for _, x := range r.rows {
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\n", x.metric, x.value, cmp.Or(x.target, "—"), x.mark)
	}
	t.Flush()
	fmt.Fprintln(out, "\nNotes:")
	for _, n := range r.notes {
		fmt.Fprintln(out, "  - "+n)
	}
	if r.failed() {
		fmt.Fprintln(out, "\nResult: FAIL")
	} else {
		fmt.Fprintln(out, "\nResult: PASS")
	}
}

// checkProcesses counts what is left below this process once the service
// stopped (CLI processes, what they started, DynamoDB Local if started
// here), and kills it.
func (r *report) checkProcesses() {
	// Turns whose client went away finish in the background, as in Lambda;
	// on a loaded machine that can take a few seconds.
	left := descendants()
	for deadline := time.Now().Add(15 * time.Second); len(left) > 0 && time.Now().Before(deadline); left = descendants() {
		time.Sleep(100 * time.Millisecond)
	}
	if len(left) == 0 {
		r.set(mProcessesAfter, "0", "0", markPass)
		return
	}
	for _, pid := range left {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	r.set(mProcessesAfter, fmt.Sprintf("%d (pids %v, killed)", len(left), left), "0", markError)
}
