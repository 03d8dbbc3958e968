package harness

import (
	"bytes"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync"
	"time"

	"github.com/ovrlrd/cloud/internal/procfs"
)

// Mem is the resident set of this process, in bytes: all of it (VmRSS),
// its anonymous (heap, stacks) and file-backed (the executable's pages)
// parts, and the kernel's high-water mark of it (VmHWM).
type Mem struct {
	RSS, Anon, File, HWM int64
}

// ReadMem reads /proc/self/status; ok is false where there is none.
func ReadMem() (Mem, bool) {
	var m Mem
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return m, false
	}
	for line := range bytes.Lines(b) {
		name, v, _ := bytes.Cut(line, []byte(":"))
		var p *int64
		switch string(name) {
		case "VmRSS":
			p = &m.RSS
		case "RssAnon":
			p = &m.Anon
		case "RssFile":
			p = &m.File
		case "VmHWM":
			p = &m.HWM
		default:
			continue
		}
		if f := bytes.Fields(v); len(f) > 0 {
			*p, _ = strconv.ParseInt(string(f[0]), 10, 64)
			*p <<= 10
		}
	}
	return m, m.RSS > 0
}

// Settle collects garbage and returns the freed memory to the OS, so that
// a reading of the heap and the resident set is of what is really kept,
// and a phase's peak does not carry what an earlier one left.
func Settle() {
	runtime.GC()
	debug.FreeOSMemory()
}

var heapSamples = []metrics.Sample{
	{Name: "/memory/classes/heap/objects:bytes"},
	{Name: "/memory/classes/heap/unused:bytes"},
}

// HeapInUse is runtime.MemStats.HeapInuse, read without stopping the world.
func HeapInUse() int64 {
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

// Peaks follows the process's resident set and heap in use during a
// phase: it samples them, and also reads the kernel's own high-water mark
// of the RSS (VmHWM) after resetting it at the start, where the kernel
// allows that, to catch a peak between two samples.
type Peaks struct {
	stop     chan struct{}
	done     chan struct{}
	mu       sync.Mutex
	max      Mem
	heap     int64
	samples  []timedMem
	hwmReset bool
}

type timedMem struct {
	at time.Time
	m  Mem
}

// Watch starts sampling, every so often, until End.
func Watch(every time.Duration) *Peaks {
	p := &Peaks{stop: make(chan struct{}), done: make(chan struct{})}
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

func (p *Peaks) sample() {
	h := HeapInUse()
	m, ok := ReadMem()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.heap = max(p.heap, h)
	if !ok {
		return
	}
	if m.RSS > p.max.RSS {
		p.max = m
	}
	if len(p.samples) < 1<<16 {
		p.samples = append(p.samples, timedMem{time.Now(), m})
	}
}

// Until returns the largest sample taken before t; call after End.
func (p *Peaks) Until(t time.Time) Mem {
	p.mu.Lock()
	defer p.mu.Unlock()
	var m Mem
	for _, s := range p.samples {
		if s.at.Before(t) && s.m.RSS > m.RSS {
			m = s.m
		}
	}
	return m
}

// End stops the sampling (its goroutine is gone when End returns) and
// returns the peak RSS in bytes (0 if unknown), the largest sample with its
// split (between samples the kernel's mark may be a little higher; then
// that is the peak), and the peak heap in use.
func (p *Peaks) End() (rss int64, sampled Mem, heap int64) {
	close(p.stop)
	<-p.done
	p.sample()
	p.mu.Lock()
	defer p.mu.Unlock()
	rss = p.max.RSS
	if m, _ := ReadMem(); p.hwmReset {
		rss = max(rss, m.HWM)
	}
	return rss, p.max, p.heap
}

// procs scans /proc (Linux; nothing elsewhere).
func procs() map[int]procfs.Stat {
	out := map[int]procfs.Stat{}
	var buf []byte
	for _, pid := range procfs.Pids() {
		if p, ok := procfs.ReadStat(pid, &buf); ok {
			out[pid] = p
		}
	}
	return out
}

// Children lists the live pids whose parent is this process (Linux; none
// elsewhere). A zombie has ended (the reaper collects it) and is not
// listed.
func Children() []int {
	self := os.Getpid()
	var pids []int
	for pid, p := range procs() {
		if p.PPID == self && p.State != 'Z' {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Descendants lists the processes below this one: children, their
// children, and so on. Where this process is a child subreaper, what a CLI
// leaves behind is re-parented here and stays in the list. Zombies (exited,
// not yet reaped) count too: they are not released yet.
func Descendants() []int {
	all := procs()
	self := os.Getpid()
	var out []int
	for pid := range all {
		// Walk up; the depth bound guards against a pid reused mid-scan.
		for p, depth := all[pid].PPID, 0; p > 1 && depth < 64; p, depth = all[p].PPID, depth+1 {
			if p == self {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}
