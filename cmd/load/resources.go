package main

import (
	"bytes"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync"
	"time"

	"github.com/ovrlrd/cloud/internal/claude"
)

// snapshot is what the process holds at one moment.
type snapshot struct {
	goroutines int   // runtime.NumGoroutine
	fds        int   // entries of /proc/self/fd (-1 where there is none)
	procs      int   // live descendants of this process (-1 where unknown)
	marked     int   // of those, how many carry claude.RunMarkerVar
	heap       int64 // heap in use: live objects plus unused space in in-use spans
	rss        int64 // VmRSS (0 where unknown)
}

// settle collects garbage and returns freed memory to the OS, so that a
// reading of the heap and the resident set is of what is really kept.
func settle() {
	runtime.GC()
	debug.FreeOSMemory()
}

func take() snapshot {
	procs := descendants()
	return snapshot{
		goroutines: runtime.NumGoroutine(),
		fds:        countFDs(),
		procs:      len(procs),
		marked:     countMarked(procs),
		heap:       heapInUse(),
		rss:        readStatus("VmRSS:"),
	}
}

func countFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	// ReadDir's own descriptor is listed too, the same at every reading.
	return len(ents)
}

// descendants lists the live processes below this one: children, their
// children, and so on. This process is a child subreaper, so what a CLI
// leaves behind is re-parented here and stays in the list. Zombies (exited,
// not yet reaped) count too: they are not released yet.
func descendants() []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	parent := map[int]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(stat[i+1:])
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(string(f[1])); err == nil {
			parent[pid] = ppid
		}
	}
	self := os.Getpid()
	var out []int
	for pid := range parent {
		// Walk up; the depth bound guards against a pid reused mid-scan.
		for p, depth := parent[pid], 0; p > 1 && depth < 64; p, depth = parent[p], depth+1 {
			if p == self {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// countMarked counts the pids whose environment carries the marker every
// process of a CLI run gets.
func countMarked(pids []int) int {
	needle := []byte(claude.RunMarkerVar + "=")
	n := 0
	for _, pid := range pids {
		env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
		if err != nil {
			continue
		}
		for kv := range bytes.SplitSeq(env, []byte{0}) {
			if bytes.HasPrefix(kv, needle) {
				n++
				break
			}
		}
	}
	return n
}

var heapSamples = []metrics.Sample{
	{Name: "/memory/classes/heap/objects:bytes"},
	{Name: "/memory/classes/heap/unused:bytes"},
}

// heapInUse is runtime.MemStats.HeapInuse, read without stopping the world.
func heapInUse() int64 {
	s := make([]metrics.Sample, len(heapSamples))
	copy(s, heapSamples)
	metrics.Read(s)
	var n int64
	for _, v := range s {
		if v.Value.Kind() == metrics.KindUint64 {
			n += int64(v.Value.Uint64())
		}
	}
	return n
}

// readStatus reads one "Name:   123 kB" line of /proc/self/status, in bytes.
func readStatus(name string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte(name)); ok {
			f := bytes.Fields(v)
			if len(f) == 0 {
				return 0
			}
			n, _ := strconv.ParseInt(string(f[0]), 10, 64)
			return n << 10
		}
	}
	return 0
}

// peaks samples the heap in use and the resident set while the loads run.
// The kernel's own high-water mark (VmHWM, reset at the start where the
// kernel allows) catches an RSS peak between two samples.
type peaks struct {
	stop      chan struct{}
	done      chan struct{}
	mu        sync.Mutex
	heap, rss int64
	hwmReset  bool
}

func watch(every time.Duration) *peaks {
	p := &peaks{stop: make(chan struct{}), done: make(chan struct{})}
	// Writing 5 to clear_refs resets VmHWM to the current RSS (Linux 4.0+).
	p.hwmReset = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	go func() {
		defer close(p.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			p.sample()
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

func (p *peaks) sample() {
	h, r := heapInUse(), readStatus("VmRSS:")
	p.mu.Lock()
	p.heap, p.rss = max(p.heap, h), max(p.rss, r)
	p.mu.Unlock()
}

// end stops the sampling (its goroutine is gone when end returns) and
// returns the peaks.
func (p *peaks) end() (heap, rss int64) {
	close(p.stop)
	<-p.done
	p.sample()
	p.mu.Lock()
	defer p.mu.Unlock()
	rss = p.rss
	if p.hwmReset {
		rss = max(rss, readStatus("VmHWM:"))
	}
	return p.heap, rss
}
