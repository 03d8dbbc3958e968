package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// mem is the resident set of this process, in bytes: all of it, and its
// anonymous (heap, stacks) and file-backed (the executable's pages) parts.
type mem struct {
	rss, anon, file int64
}

func (m mem) String() string {
	if m.anon+m.file == 0 {
		return fmtMB(m.rss)
	}
	return fmt.Sprintf("%s (anon %s + file %s)", fmtMB(m.rss), fmtMB(m.anon), fmtMB(m.file))
}

// readMem reads /proc/self/status; ok is false where there is none.
func readMem() (m mem, ok bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return m, false
	}
	for line := range bytes.Lines(b) {
		var p *int64
		switch {
		case bytes.HasPrefix(line, []byte("VmRSS:")):
			p, ok = &m.rss, true
		case bytes.HasPrefix(line, []byte("RssAnon:")):
			p = &m.anon
		case bytes.HasPrefix(line, []byte("RssFile:")):
			p = &m.file
		default:
			continue
		}
		*p = kB(line)
	}
	return m, ok
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

// hwm reads VmHWM, the kernel's high-water mark of VmRSS, in bytes.
func hwm() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(b) {
		if bytes.HasPrefix(line, []byte("VmHWM:")) {
			return kB(line)
		}
	}
	return 0
}

// peakRSS follows the process's resident set during a phase: it samples
// /proc/self/status, and also reads the kernel's own high-water mark
// (VmHWM) after resetting it at the start, when the kernel allows that.
type peakRSS struct {
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	max     mem
	samples []timed
	reset   bool
}

type timed struct {
	at time.Time
	m  mem
}

func watchRSS(every time.Duration) *peakRSS {
	p := &peakRSS{stop: make(chan struct{}), done: make(chan struct{})}
	// Writing 5 to clear_refs resets VmHWM to the current RSS (Linux 4.0+).
	p.reset = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
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

func (p *peakRSS) sample() {
	if m, ok := readMem(); ok {
		p.mu.Lock()
		if m.rss > p.max.rss {
			p.max = m
		}
		if len(p.samples) < 1<<16 {
			p.samples = append(p.samples, timed{time.Now(), m})
		}
		p.mu.Unlock()
	}
}

// until returns the largest sample taken before t; call after end.
func (p *peakRSS) until(t time.Time) mem {
	p.mu.Lock()
	defer p.mu.Unlock()
	var m mem
	for _, s := range p.samples {
		if s.at.Before(t) && s.m.rss > m.rss {
			m = s.m
		}
	}
	return m
}

// end stops sampling and returns the peak in bytes (0 if unknown), and the
// largest sample with its split. Between samples the kernel's mark may be a
// little higher; then that is the peak.
func (p *peakRSS) end() (peak int64, sampled mem) {
	close(p.stop)
	<-p.done
	p.sample()
	p.mu.Lock()
	defer p.mu.Unlock()
	peak = p.max.rss
	if p.reset {
		peak = max(peak, hwm())
	}
	return peak, p.max
}

// peakString is a peak with the split of the largest sample.
func peakString(peak int64, sampled mem) string {
	if sampled.anon+sampled.file == 0 {
		return fmtMB(peak)
	}
	return fmt.Sprintf("%s (largest sample: anon %s + file %s)", fmtMB(peak), fmtMB(sampled.anon), fmtMB(sampled.file))
}
