package main

import (
	"bytes"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"

	"github.com/ovrlrd/cloud/internal/procfs"
)

// mem is this process's resident set in bytes: all of it (VmRSS), its
// anonymous (heap, stacks) and file-backed (the executable's pages) parts,
// and the kernel's high-water mark of it (VmHWM).
type mem struct{ rss, anon, file, hwm int64 }

// readMem reads /proc/self/status; all zero where there is none.
func readMem() (m mem) {
	b, _ := os.ReadFile("/proc/self/status")
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
func settle() {
	runtime.GC()
	debug.FreeOSMemory()
}

// heapInUse is the heap's in-use spans: live objects and the free space
// among them.
func heapInUse() int64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

// resetPeak restarts the kernel's high-water mark of the resident set
// (VmHWM) at the current RSS (Linux 4.0+), so that readMem().hwm is the
// peak of the phase that follows, between samples too; false where it
// cannot.
func resetPeak() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// descendants lists the processes below this one, zombies included (they
// are not released yet). As a child subreaper, this process also adopts
// what a CLI leaves behind, which so stays in the list.
func descendants() []int {
	all := map[int]procfs.Stat{}
	var buf []byte
	for _, pid := range procfs.Pids() {
		if st, ok := procfs.ReadStat(pid, &buf); ok {
			all[pid] = st
		}
	}
	self := os.Getpid()
	var out []int
	for pid := range all {
		// The depth bound guards against a pid reused mid-scan.
		for p, depth := all[pid].PPID, 0; p > 1 && depth < 64; p, depth = all[p].PPID, depth+1 {
			if p == self {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}
