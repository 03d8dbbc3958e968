// Command bench measures the relay of a streamed turn through the real
// service wiring: config.Load, app.New and the local gateway in front of the
// real Lambda adapters, on a loopback port, over DynamoDB Local, with the
// fake Claude CLI (internal/claude/testdata/fakeclaude) as CLAUDE_PATH. It
// prints one table: each metric, its value, its target and a mark.
//
//	make bench                          # DynamoDB Local is started around it
//	make bench BENCH_FLAGS=-quick       # smaller counts, a few seconds
//
// It measures, in order:
//
//   - RSS idle: VmRSS of this process (which hosts the server) after a few
//     warm-up turns and a forced GC that returns freed memory to the OS,
//     split into anonymous memory (heap, stacks) and file-backed pages (the
//     executable's code and data).
//   - Time to first byte and to first chunk, over turns run one after
//     another, each on its own conversation: from just before the POST is
//     sent to the first body byte (the ping sent right after the pre-stream
//     transaction) and to the first chunk event. The service's DynamoDB
//     calls are timed too, to tell the database's share from the rest.
//   - Relay overhead: the fake CLI writes texts at a steady rate, each text
//     the wall-clock time it was written; for every chunk the client
//     records its arrival time minus that stamp.
//   - Flat-out throughput: the fake writes texts as fast as it can; the rate
//     is chunks over the time from the first stamp to the last arrival, the
//     queueing is the same stamp delay as above, the peak RSS is sampled
//     while the events are relayed and over the whole turn (which ends by
//     saving the whole answer), and allocations are the process's Mallocs
//     over the run divided by the chunks relayed.
//   - RSS under load: the peak while concurrent streams run.
//   - Server-only allocations: turn.Service.Run with a discarding SSE
//     writer, timed with testing.Benchmark (one op is one relayed event).
//   - The CLI runner alone (claude.Start and Events): each line's delay at
//     the steady rate, and the bytes allocated while a 20 MiB line is
//     skipped with MaxLine 1 MiB.
//   - Cancel: turns that only a cancel ends, each cancelled once its first
//     byte arrived; from sending POST /chat/{id}/cancel to the end of the
//     turn's stream, the slowest of three.
//   - Cold starts: each function's bootstrap under the AWS Lambda Runtime
//     Interface Emulator (runtimetest.ColdStarter), a new emulator process
//     each time, -cold-starts times: the init the emulator reports and the
//     wall time to the first response, median, min and max. Then the size
//     of each linux/arm64 binary as `make build` builds it.
//   - That no process is left: every child of this process once the
//     service, the stand-ins and DynamoDB Local (if started here) stopped.
//
// -cpuprofile and -memprofile write profiles of the measured phases.
//
// Timing targets are reported, not enforced: the exit status is 0 when every
// phase ran, whatever the numbers; 1 when a phase failed (an error, or
// events lost).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/harness"
)

// options are the bench's settings, from its flags.
type options struct {
	harness.Flags
	relayN     int
	relayRate  int
	floodN     int
	ttfbTurns  int
	warmup     int
	streams    int
	loadN      int
	loadRate   int
	serverN    int
	cpuProf    string
	memProf    string
	coldStarts int // of each function under the emulator; 0 skips them
}

func parseOptions(args []string, getenv func(string) string, errOut io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(errOut)
	o.Register(fs, "smaller counts for a fast check")
	fs.IntVar(&o.relayN, "relay-n", 5000, "events of the steady-rate (relay overhead) turn")
	fs.IntVar(&o.relayRate, "relay-rate", 1000, "events per second of the steady-rate turn")
	fs.IntVar(&o.floodN, "flood-n", 200000, "events of the flat-out turn")
	fs.IntVar(&o.ttfbTurns, "ttfb-turns", 50, "turns timed for the first byte and the first chunk")
	fs.IntVar(&o.warmup, "warmup", 5, "untimed turns first (connections, DynamoDB Local's JIT)")
	fs.IntVar(&o.streams, "streams", 20, "concurrent streams of the RSS-under-load phase")
	fs.IntVar(&o.loadN, "load-n", 3000, "events of each concurrent stream")
	fs.IntVar(&o.loadRate, "load-rate", 1000, "events per second of each concurrent stream")
	fs.IntVar(&o.serverN, "server-n", 200000, "events of the server-only allocation benchmark (0 skips it)")
	fs.IntVar(&o.coldStarts, "cold-starts", 10, "cold starts of each function under the emulator (0 skips them)")
	fs.StringVar(&o.cpuProf, "cpuprofile", "", "write a CPU profile of the measured phases to this file")
	fs.StringVar(&o.memProf, "memprofile", "", "write an allocation profile (every allocation of 4 KiB sampled) to this file")
	err := o.Parse(fs, args, getenv, map[string]func(){
		"relay-n": func() { o.relayN = 1000 }, "flood-n": func() { o.floodN = 20000 },
		"ttfb-turns": func() { o.ttfbTurns = 10 }, "warmup": func() { o.warmup = 2 }, "load-n": func() { o.loadN = 500 },
		"server-n": func() { o.serverN = 20000 }, "cold-starts": func() { o.coldStarts = 3 },
	})
	if err == nil {
		err = harness.AtLeastOne(map[string]int{"relay-n": o.relayN, "relay-rate": o.relayRate, "flood-n": o.floodN,
			"ttfb-turns": o.ttfbTurns, "streams": o.streams, "load-n": o.loadN, "load-rate": o.loadRate})
	}
	if err == nil && (o.warmup < 0 || o.serverN < 0 || o.coldStarts < 0) {
		err = errors.New("-warmup, -server-n and -cold-starts must not be negative")
	}
	return o, err
}

func main() { harness.Main(run) }

// run runs the bench and returns the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, out, errOut io.Writer) int {
	o, err := parseOptions(args, getenv, errOut)
	// What a CLI leaves behind is re-parented here and reaped, so the run
	// leaves no process.
	if code, ok := harness.Begin("bench", err, errOut); !ok {
		return code
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	start := time.Now()

	s, err := startStack(ctx, o, errOut)
	if err != nil {
		fmt.Fprintln(errOut, "bench: start:", err)
		return 1
	}
	b := &bench{o: o, s: s}
	stopProfiles, err := startProfiles(o)
	if err != nil {
		s.close()
		fmt.Fprintln(errOut, "bench:", err)
		return 1
	}
	b.runPhases(ctx)
	if err := stopProfiles(); err != nil {
		fmt.Fprintln(errOut, "bench: profile:", err)
	}
	b.coldStartsAndSizes(ctx)
	s.close()
	b.checkProcesses()

	harness.Banner(out, "relay bench", b.settings()+"\n")
	b.print(out)
	fmt.Fprintf(out, "\ntotal time %.1f s\n", time.Since(start).Seconds())
	if b.failed {
		return 1
	}
	return 0
}
