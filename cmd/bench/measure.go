package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"

	"github.com/ovrlrd/cloud/internal/procfs"
)

// samples are durations to take quantiles of, safe for concurrent use. A
// run keeps at most a few hundred thousand (a few MB); the phases that
// measure memory keep none.
type samples struct {
	mu sync.Mutex
	ds []time.Duration
}

// add records d; a negative value (calls that overlapped) counts as zero.
func (s *samples) add(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ds = append(s.ds, max(d, 0))
}

// at is the q-quantile (0 < q ≤ 1) by nearest rank; 0 without samples.
func (s *samples) at(q float64) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ds) == 0 {
		return 0
	}
	slices.Sort(s.ds)
	return s.ds[max(int(math.Ceil(q*float64(len(s.ds))))-1, 0)]
}

// p50p90 is the p50 and, in brackets, the p90.
func (s *samples) p50p90() string {
	return fmt.Sprintf("%s (p90 %s)", fmtMS(s.at(0.5)), fmtMS(s.at(0.9)))
}

// span is one DynamoDB call of the service's, tx if a TransactWriteItems.
type span struct {
	start, end time.Time
	tx         bool
}

// dbTimer times the service's DynamoDB calls, to tell the database's share
// of a request's time from the rest.
type dbTimer struct {
	mu    sync.Mutex
	spans []span // the latest calls
}

// option installs the timer on the service's DynamoDB client.
func (d *dbTimer) option() func(*dynamodb.Options) {
	timed := middleware.InitializeMiddlewareFunc("benchTimer",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			start := time.Now()
			out, md, err := next.HandleInitialize(ctx, in)
			_, tx := in.Parameters.(*dynamodb.TransactWriteItemsInput)
			d.mu.Lock()
			defer d.mu.Unlock()
			// Bounded: the phases that never read the spans make calls too.
			d.spans = append(d.spans[max(len(d.spans)-1023, 0):], span{start, time.Now(), tx})
			return out, md, err
		})
	return func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(timed, middleware.Before)
		})
	}
}

// dbShare is what one request's DynamoDB calls, those that started
// between its sending and the start (or end) of its answer, made of that
// time.
type dbShare struct {
	// inFlight is the time during which at least one call was in flight:
	// the calls overlap, so their durations do not add up.
	inFlight time.Duration
	// trips are the sequential round trips: the longest chain of calls
	// that ended before the answer started, each started after the one
	// before it ended.
	trips, calls int
	// longest is the longest call's duration, tx the transaction's (0
	// without one).
	longest, tx time.Duration
}

// within returns the share of the calls that started between from and to,
// for a request that had the service to itself.
func (d *dbTimer) within(from, to time.Time) (s dbShare) {
	var calls [][2]time.Duration // start and end, since from
	d.mu.Lock()
	for _, c := range d.spans {
		if start := c.start.Sub(from); start >= 0 && c.start.Before(to) {
			calls = append(calls, [2]time.Duration{start, c.end.Sub(from)})
			if c.tx {
				s.tx = c.end.Sub(c.start)
			}
		}
	}
	d.mu.Unlock()
	slices.SortFunc(calls, func(a, b [2]time.Duration) int { return cmp.Compare(a[0], b[0]) })
	covered := time.Duration(0) // the union's end so far
	for _, c := range calls {
		if end := min(c[1], to.Sub(from)); end > covered {
			s.inFlight += end - max(c[0], covered)
			covered = end
		}
		s.longest = max(s.longest, c[1]-c[0])
	}
	// The earliest end first makes the longest chain. A call still in
	// flight at to did not hold the answer up.
	slices.SortFunc(calls, func(a, b [2]time.Duration) int { return cmp.Compare(a[1], b[1]) })
	last := time.Duration(-1)
	for _, c := range calls {
		if c[0] >= last && c[1] <= to.Sub(from) {
			s.trips, last = s.trips+1, c[1]
		}
	}
	s.calls = len(calls)
	return s
}

// mem is a process's resident set in bytes: all of it (VmRSS), its
// anonymous (heap, stacks) and file-backed (the executable's pages) parts,
// and the kernel's high-water mark of it (VmHWM).
type mem struct{ rss, anon, file, hwm int64 }

// readMem reads /proc/<proc>/status (proc a pid, or "self"); all zero
// where there is none.
func readMem(proc string) (m mem) {
	b, _ := os.ReadFile("/proc/" + proc + "/status")
	fields := map[string]*int64{"VmRSS": &m.rss, "RssAnon": &m.anon, "RssFile": &m.file, "VmHWM": &m.hwm}
	for line := range bytes.Lines(b) {
		name, v, _ := bytes.Cut(line, []byte(":"))
		if p, f := fields[string(name)], bytes.Fields(v); p != nil && len(f) > 0 {
			kb, _ := strconv.ParseInt(string(f[0]), 10, 64)
			*p = kb << 10
		}
	}
	return m
}

// settle collects garbage and returns the freed memory to the OS, so that
// a reading is of what is really kept and a phase's peak does not carry
// what an earlier one left.
func settle() { debug.FreeOSMemory() }

// resetPeak restarts the kernel's high-water mark of the resident set
// (VmHWM) of /proc/<proc> at its current RSS (Linux 4.0+). The function it
// returns reads the peak of what followed, between samples too; 0 where
// the mark could not be restarted.
func resetPeak(proc string) (peak func() int64) {
	if os.WriteFile("/proc/"+proc+"/clear_refs", []byte("5"), 0) != nil {
		return func() int64 { return 0 }
	}
	return func() int64 { return readMem(proc).hwm }
}

// descendants lists the processes below pid, zombies included (they are
// not released yet). A child subreaper, as this process and the stream
// function are, also adopts what a CLI leaves behind, which so stays in
// the list.
func descendants(pid int) []int {
	parent := map[int]int{}
	var buf []byte
	for _, p := range procfs.Pids() {
		if st, ok := procfs.ReadStat(p, &buf); ok {
			parent[p] = st.PPID
		}
	}
	var out []int
	for p := range parent {
		// The depth bound guards against a pid reused mid-scan.
		for up, depth := parent[p], 0; up > 1 && depth < 64; up, depth = parent[up], depth+1 {
			if up == pid {
				out = append(out, p)
				break
			}
		}
	}
	return out
}
