package main

import (
	"bytes"
	"os"
	"strconv"
	"sync"
	"time"
)

// procStatus reads a "kB" field (VmRSS, VmHWM) of /proc/self/status, in
// bytes; ok is false where there is no such file.
func procStatus(field string) (int64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	key := []byte(field + ":")
	for line := range bytes.Lines(b) {
		if !bytes.HasPrefix(line, key) {
			continue
		}
		f := bytes.Fields(line[len(key):])
		if len(f) == 0 {
			return 0, false
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		return kb << 10, err == nil
	}
	return 0, false
}

func rss() (int64, bool) { return procStatus("VmRSS") }

// peakRSS follows the process's resident set during a phase: it samples
// VmRSS, and also reads the kernel's own high-water mark (VmHWM) after
// resetting it at the start, when the kernel allows that.
type peakRSS struct {
	stop  chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	max   int64
	reset bool
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
	if v, ok := rss(); ok {
		p.mu.Lock()
		p.max = max(p.max, v)
		p.mu.Unlock()
	}
}

// end stops sampling and returns the peak in bytes (0 if unknown).
func (p *peakRSS) end() int64 {
	close(p.stop)
	<-p.done
	p.sample()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reset {
		if hwm, ok := procStatus("VmHWM"); ok {
			p.max = max(p.max, hwm)
		}
	}
	return p.max
}
