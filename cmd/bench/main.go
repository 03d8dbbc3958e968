// Command bench drives the whole service in this process as `make dev`
// wires it (the fake Claude CLI as CLAUDE_PATH) and prints one table: each
// row's value, target and mark.
//
//	make bench                  # relay, first byte, event log, live approvals, RSS, cold starts, sizes
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
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/ovrlrd/cloud/internal/claude"
)

// options are the run's settings; -quick picks the smaller counts.
type options struct {
	quick, load   bool
	timeout       time.Duration
	logLevel, cli string
	// The bench's counts.
	relayN, floodN, ttfbTurns, warmup, streams, streamN, coldStarts int
	readFor                                                         time.Duration // each REST read's run
	logN, logRate                                                   int           // the event log's turn
	approvalN                                                       int           // the live approval turn's requests
	// The load's.
	users, turns, rounds, events, rate, workers int
	duration, refreshEvery                      time.Duration
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// parseFlags reads the flags and sets the counts: a full run's, or a fast
// check's with -quick.
func parseFlags(args []string, errOut io.Writer) (o options, err error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.BoolVar(&o.quick, "quick", false, "smaller counts for a fast check")
	fs.BoolVar(&o.load, "load", false, "run the load (make load) instead of the bench")
	fs.DurationVar(&o.timeout, "timeout", 170*time.Second, "the whole run")
	fs.StringVar(&o.logLevel, "log-level", "warn", "the service's log level (logs go to stderr)")
	fs.StringVar(&o.cli, "cli", "", "the fake CLI to run (default: built from internal/claude/testdata/fakeclaude)")
	switch err := fs.Parse(args); {
	case err != nil:
		return o, err
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.timeout <= 0:
		return o, errors.New("-timeout must be positive")
	}
	o.relayN, o.floodN, o.ttfbTurns, o.warmup, o.streams, o.streamN, o.coldStarts = 5000, 200000, 50, 5, 20, 3000, 10
	o.readFor = 3 * time.Second
	// 10 s: long enough for the log's batching to set its pace.
	o.logN, o.logRate = 2000, 200
	o.approvalN = 40
	o.users, o.turns, o.rounds, o.events, o.rate, o.workers = 5, 50, 2, 600, 200, 32
	o.duration, o.refreshEvery = time.Minute, 5*time.Second
	if o.quick {
		o.relayN, o.floodN, o.ttfbTurns, o.warmup, o.streamN, o.coldStarts = 1000, 20000, 10, 2, 500, 3
		o.readFor = time.Second
		o.logN, o.approvalN = 400, 10
		o.turns, o.events, o.rate = 10, 300, 300
		o.duration, o.refreshEvery = 5*time.Second, time.Second
	}
	return o, nil
}

// run returns the exit status: 1 when a row is marked ERROR, 2 on bad
// flags.
func run(ctx context.Context, args []string, out, errOut io.Writer) int {
	o, err := parseFlags(args, errOut)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(errOut, "bench:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	start := time.Now()
	name, env := "bench", map[string]string{"RATE_LIMIT_TURN": "999999/1m", "RATE_LIMIT_READ": "999999/1m", "RATE_LIMIT_WRITE": "999999/1m"}
	phases := (*bench).run
	if o.load {
		// Only turns are freed: the REST mix meets the default limits.
		name, env, phases = "load", map[string]string{"RATE_LIMIT_TURN": "999999/1m"}, (*bench).load
	}
	b := &bench{o: &o}
	// As the stream function is, so that what a CLI leaves behind is
	// re-parented here, counted and reaped.
	err = claude.BecomeSubreaper()
	if err == nil {
		b.s, err = newStack(ctx, &o, name, errOut, env, b.db.option(), b.evlog.option())
	}
	if err != nil {
		fmt.Fprintln(errOut, "bench: start:", err)
		return 1
	}
	settings := phases(b, ctx)
	if err := ctx.Err(); err != nil {
		b.set("whole run", "cut short: "+err.Error(), "within -timeout", markError)
	}
	b.s.close()
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

// bench is one run: what it drives, and the table it prints, in the order
// rows were set.
type bench struct {
	o             *options
	s             *stack
	userID, token string // the bench's user
	db            dbTimer
	evlog         logCounter
	rows          []row
	notes         []string
}

func (b *bench) set(metric, value, target, mark string) {
	b.rows = append(b.rows, row{metric, value, target, mark})
}

func (b *bench) failed() bool {
	return slices.ContainsFunc(b.rows, func(x row) bool { return x.mark == markError })
}

// fail marks every row of a failed phase it had not filled; nil is no
// failure.
func (b *bench) fail(metrics []string, err error) {
	if err == nil {
		return
	}
	for _, m := range metrics {
		if !slices.ContainsFunc(b.rows, func(x row) bool { return x.metric == m }) {
			b.set(m, "error: "+err.Error(), "", markError)
		}
	}
}

// judge is markPass when ok, else the mark a miss gets.
func judge(ok bool, miss string) string {
	if ok {
		return markPass
	}
	return miss
}

// atMost records a duration against an upper target, with why (if not
// empty) saying what the target is made of.
func (b *bench) atMost(metric string, got, target time.Duration, why, value string) {
	b.set(metric, value, "≤ "+fmtMS(target)+why, judge(got <= target, markMiss))
}

func (b *bench) print(out io.Writer) {
	t := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(t, "metric\tvalue\ttarget\tmark\n------\t-----\t------\t----")
	for _, x := range b.rows {
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\n", x.metric, x.value, cmp.Or(x.target, "—"), x.mark)
	}
	t.Flush()
	fmt.Fprintln(out, "\nNotes:")
	for _, n := range b.notes {
		fmt.Fprintln(out, "  - "+n)
	}
	if b.failed() {
		fmt.Fprintln(out, "\nResult: FAIL")
	} else {
		fmt.Fprintln(out, "\nResult: PASS")
	}
}

// checkProcesses counts what is left below this process once the service
// stopped (CLI processes, what they started, DynamoDB Local if started
// here), and kills it.
func (b *bench) checkProcesses() {
	// Turns whose client went away finish in the background, as in Lambda;
	// on a loaded machine that can take a few seconds.
	left := descendants(os.Getpid())
	for deadline := time.Now().Add(15 * time.Second); len(left) > 0 && time.Now().Before(deadline); left = descendants(os.Getpid()) {
		time.Sleep(100 * time.Millisecond)
	}
	for _, pid := range left {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	value := strconv.Itoa(len(left))
	if len(left) > 0 {
		value += fmt.Sprintf(" (pids %v, killed)", left)
	}
	b.set(mProcessesAfter, value, "0", judge(len(left) == 0, markError))
}
