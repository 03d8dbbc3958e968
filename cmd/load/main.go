// Command load drives the whole service, wired as `make dev` wires it
// (config.Load, app.New and the local gateway in front of the real Lambda
// adapters, on a loopback port, over its own table in DynamoDB Local, with an
// in-process S3 stand-in and the fake Claude CLI), with two loads, then
// checks that the process let go of what the loads took:
//
//	make load                          # DynamoDB Local is started around it
//	make load LOAD_FLAGS=-quick        # a few seconds of each load
//
// Streamed turns: -turns workers start at once, each running -rounds turns
// in a row on its own conversation (POST /chat/stream, then POST
// /chat/{id}/stream); the fake CLI writes -events texts at -rate per second.
// RATE_LIMIT_TURN is -turn-limit (high by default, so the turn limit refuses
// nothing; with -turn-limit "" the default applies and its 429s are counted
// apart).
//
// REST: -workers workers send a mix of GET /health, GET /chat?limit=1, GET
// /chat, GET /chat/{id}, POST /chat/{id}/events, POST /devices and DELETE
// /devices/{token} as fast as they are answered, for -duration, as the same
// users, plus one POST /auth/refresh every -refresh-every. Every other limit
// is the default, so 429s are expected and counted apart.
//
// Resources: goroutines, open descriptors and descendant processes are
// counted after the warm-up (the baseline) and after the loads, each time
// once every idle keep-alive connection is closed; the heap in use and the
// RSS are read at both points after a GC, and sampled in between for their
// peaks.
//
// The exit status is 1 when any request or turn failed other than with a
// 429, when resources did not come back to the baseline (within the slack),
// or when the heap grew by more than -heap-slack; 2 on bad flags.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/devkit/harness"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// options are the run's settings, from its flags.
type options struct {
	harness.Flags
	users        int
	turns        int
	rounds       int
	events       int
	rate         int
	turnLimit    string
	workers      int
	duration     time.Duration
	refreshEvery time.Duration
	settleFor    time.Duration
	goSlack      int
	fdSlack      int
	heapSlackMB  int
}

func parseOptions(args []string, getenv func(string) string, errOut io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(errOut)
	o.Register(fs, "a fast check: 20 turns of 300 events, 5 s of REST")
	fs.IntVar(&o.users, "users", 5, "signed-in users the turns and the requests are spread over")
	fs.IntVar(&o.turns, "turns", 50, "concurrent streamed turns (workers of the first load)")
	fs.IntVar(&o.rounds, "rounds", 2, "turns each stream worker runs in a row on its conversation")
	fs.IntVar(&o.events, "events", 600, "texts the fake CLI writes per turn")
	fs.IntVar(&o.rate, "rate", 200, "texts per second the fake CLI writes")
	fs.StringVar(&o.turnLimit, "turn-limit", "100000/1m", `RATE_LIMIT_TURN; "" keeps the default (10/1m)`)
	fs.IntVar(&o.workers, "workers", 32, "concurrent workers of the REST load")
	fs.DurationVar(&o.duration, "duration", 60*time.Second, "length of the REST load")
	fs.DurationVar(&o.refreshEvery, "refresh-every", 5*time.Second, "one POST /auth/refresh per this interval, users in turn (0: none)")
	fs.DurationVar(&o.settleFor, "settle", 10*time.Second, "how long resources may take to come back to the baseline")
	fs.IntVar(&o.goSlack, "goroutine-slack", 4, "goroutines allowed above the baseline afterwards")
	fs.IntVar(&o.fdSlack, "fd-slack", 2, "open descriptors allowed above the baseline afterwards")
	fs.IntVar(&o.heapSlackMB, "heap-slack", 32, "MiB the heap in use may grow by over the run (after a GC)")
	err := o.Parse(fs, args, getenv, map[string]func(){
		"turns": func() { o.turns = 20 }, "rounds": func() { o.rounds = 1 }, "events": func() { o.events = 300 },
		"rate": func() { o.rate = 300 }, "duration": func() { o.duration = 5 * time.Second },
	})
	if err == nil {
		err = harness.AtLeastOne(map[string]int{"users": o.users, "turns": o.turns, "rounds": o.rounds,
			"events": o.events, "rate": o.rate, "workers": o.workers})
	}
	switch {
	case err != nil:
	case o.duration <= 0 || o.settleFor <= 0:
		err = errors.New("-duration and -settle must be positive")
	case o.refreshEvery < 0 || o.goSlack < 0 || o.fdSlack < 0 || o.heapSlackMB < 0:
		err = errors.New("-refresh-every and the slacks must not be negative")
	}
	return o, err
}

func main() { harness.Main(run) }

// run runs both loads and the checks, prints the table and returns the exit
// status.
func run(ctx context.Context, args []string, getenv func(string) string, out, errOut io.Writer) int {
	o, err := parseOptions(args, getenv, errOut)
	// What a CLI leaves behind is re-parented here and reaped.
	if code, ok := harness.Begin("load", err, errOut); !ok {
		return code
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	start := time.Now()

	logs := &errorLines{w: errOut}
	env := map[string]string{}
	// Every other limit keeps its default.
	if o.turnLimit != "" {
		env["RATE_LIMIT_TURN"] = o.turnLimit
	}
	s, err := harness.New(ctx, harness.Options{Name: "load", Flags: o.Flags, LogOut: logs, Env: env})
	if err != nil {
		fmt.Fprintln(errOut, "load: start:", err)
		return 1
	}
	defer s.Close()
	c := s.NewClient(o.turns + o.workers + 8)
	r := &report{o: o, streams: newStreamLoad(), rest: newRestLoad()}

	users, err := setUp(ctx, s, c, o.users)
	if err != nil {
		fmt.Fprintln(errOut, "load: set-up:", err)
		return 1
	}
	r.base = quiesce(s, c)
	watcher := harness.Watch(100 * time.Millisecond)

	fmt.Fprintf(errOut, "load: %d streamed turns (%d workers × %d rounds)…\n", o.turns*o.rounds, o.turns, o.rounds)
	r.streams.run(ctx, o, c, users)
	fmt.Fprintf(errOut, "load: REST for %v with %d workers…\n", o.duration, o.workers)
	r.rest.run(ctx, o, c, users)

	r.peakRSS, _, r.peakHeap = watcher.End()
	r.after, r.settledIn = r.settle(s, c)
	r.serviceErrors = logs.n.Load()
	r.interrupted = ctx.Err()

	harness.Banner(out, "load", r.settings())
	r.print(out)
	fmt.Fprintf(out, "\ntotal time %.1f s\n", time.Since(start).Seconds())
	if r.failed() {
		return 1
	}
	return 0
}

// setUp signs the users in through POST /auth and warms every path up: one
// short turn per user (which also gives each user a conversation) and one
// request of each REST route. None of it is measured.
func setUp(ctx context.Context, s *harness.Stack, c *harness.Client, n int) ([]*user, error) {
	users := make([]*user, n)
	for i := range users {
		g, err := s.SignIn(ctx, c, fmt.Sprintf("load.%d", i), fmt.Sprintf("load%d@example.com", i))
		if err != nil {
			return nil, err
		}
		users[i] = &user{token: g.SessionToken}
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Go(func() {
			r, err := c.Stream(wctx, "/chat/stream", claudetest.Script("normal", "text", "warm-up"), u.token, nil, nil)
			if err == nil && (r.Terminal != ovrlrd.OutcomeComplete || r.ConvID == "") {
				err = fmt.Errorf("warm-up turn ended with %q %q", r.Terminal, r.Message)
			}
			errs[i] = err
			u.addConv(r.ConvID)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	warm := newRestLoad()
	for r := range nRoutes {
		if r == rRefresh {
			continue // it rotates the token and spends the address's small auth budget
		}
		warm.one(wctx, c, users[0], r, mrand.New(mrand.NewPCG(1, 2)))
	}
	if lines := warm.errs.lines(); len(lines) > 0 {
		return nil, fmt.Errorf("warm-up request failed: %v", lines)
	}
	return users, nil
}

// quiesce closes every idle keep-alive connection, waits until the
// goroutine count has been steady for a few readings (at most 3 s), then
// collects garbage and takes a snapshot.
func quiesce(s *harness.Stack, c *harness.Client) snapshot {
	c.Transport.CloseIdleConnections()
	s.CloseIdle()
	last, steady := -1, 0
	for deadline := time.Now().Add(3 * time.Second); steady < 3 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		if n := runtime.NumGoroutine(); n == last {
			steady++
		} else {
			last, steady = n, 0
		}
	}
	harness.Settle()
	return take()
}

// settle waits, at most -settle, until goroutines, descriptors and processes
// are back within the slack of the baseline, and returns the last snapshot
// and how long it took.
func (r *report) settle(s *harness.Stack, c *harness.Client) (snapshot, time.Duration) {
	start := time.Now()
	deadline := start.Add(r.o.settleFor)
	for {
		snap := quiesce(s, c)
		if r.back(snap) || time.Now().After(deadline) {
			return snap, time.Since(start)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// errorLines passes the service's log on and counts its ERROR records (one
// JSON record per Write).
type errorLines struct {
	w io.Writer
	n atomic.Int64
}

var errorLevel = []byte(`"level":"ERROR"`)

func (e *errorLines) Write(p []byte) (int, error) {
	if bytes.Contains(p, errorLevel) {
		e.n.Add(1)
	}
	return e.w.Write(p)
}
