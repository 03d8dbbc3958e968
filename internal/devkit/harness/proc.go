package harness

import (
	"bytes"
	"os"
	"runtime/metrics"
	"strconv"
	"sync"
	"time"
)

// Mem is the resident set of this process, in bytes: all of it (VmRSS),
// and its anonymous (heap, stacks) and file-backed (the executable's pages)
// parts.
type Mem struct {
	RSS, Anon, File int64
}

// ReadMem reads /proc/self/status; ok is false where there is none.
func ReadMem() (m Mem, ok bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return m, false
	}
	for line := range bytes.Lines(b) {
		var p *int64
		switch {
		case bytes.HasPrefix(line, []byte("VmRSS:")):
			p, ok = &m.RSS, true
		case bytes.HasPrefix(line, []byte("RssAnon:")):
			p = &m.Anon
		case bytes.HasPrefix(line, []byte("RssFile:")):
			p = &m.File
		default:
			continue
		}
		*p = kB(line)
	}
	return m, ok
}

// ProcStatus reads one "Name:   123 kB" line of /proc/self/status (name
// is given with its colon, "VmHWM:"), in bytes; 0 where there is none.
func ProcStatus(name string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(b) {
		if bytes.HasPrefix(line, []byte(name)) {
			return kB(line)
		}
	}
	return 0
}

// kB reads the value of a "Name:   123 kB" line, in bytes.
func kB(line []byte) int64 {
	_, v, _ := bytes.Cut(line, []byte(":"))
	f := bytes.Fields(v)
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.ParseInt(string(f[0]), 10, 64)
	return n << 10
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
	if p.hwmReset {
		rss = max(rss, ProcStatus("VmHWM:"))
	}
	return rss, p.max, p.heap
}

// proc is one process of the /proc scan.
type proc struct {
	ppid  int
	state string
}

// procs scans /proc (Linux; nothing elsewhere).
func procs() map[int]proc {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	out := map[int]proc{}
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
			out[pid] = proc{ppid: ppid, state: string(f[0])}
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
		if p.ppid == self && p.state != "Z" {
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
		for p, depth := all[pid].ppid, 0; p > 1 && depth < 64; p, depth = all[p].ppid, depth+1 {
			if p == self {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}
