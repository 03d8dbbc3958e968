// Package procfs reads Linux's process table, /proc: the one reader of
// /proc/<pid>/stat, shared by the supervision of a run (internal/claude)
// and the dev tools that check what a run left behind. It allocates
// nothing per read beyond the buffer its caller keeps, because the
// supervision scans the whole table on every child's exit. Where there is
// no /proc, every read fails.
package procfs

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// Stat is what /proc/<pid>/stat says about a process.
type Stat struct {
	PID, PPID, PGRP, SID int
	// State is as Linux spells it: 'Z' zombie, 'X' dead; anything else is
	// running.
	State byte
}

// ReadStat reads /proc/<pid>/stat into *buf, which it grows as needed. A
// failed read is nil, which does not parse.
func ReadStat(pid int, buf *[]byte) (Stat, bool) {
	b, _ := ReadFile("/proc/"+strconv.Itoa(pid)+"/stat", buf)
	return ParseStat(pid, b)
}

// ParseStat parses the text of /proc/<pid>/stat: "pid (comm) state ppid
// pgrp session … starttime …", where comm may hold spaces and parentheses,
// so the fields are counted from its last ')'.
func ParseStat(pid int, b []byte) (Stat, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return Stat{}, false
	}
	f := bytes.Fields(b[i+2:])
	if len(f) < 20 || len(f[0]) != 1 {
		return Stat{}, false
	}
	s := Stat{PID: pid, State: f[0][0]}
	s.PPID, _ = strconv.Atoi(string(f[1]))
	s.PGRP, _ = strconv.Atoi(string(f[2]))
	s.SID, _ = strconv.Atoi(string(f[3]))
	return s, true
}

// ReadFile reads a /proc file into *buf, growing it as needed by 4 KiB or
// by doubling, whichever is more. The result is valid until the next call
// with the same buffer.
func ReadFile(name string, buf *[]byte) ([]byte, bool) {
	fd, err := syscall.Open(name, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, false
	}
	defer syscall.Close(fd)
	for n := 0; ; {
		if n == len(*buf) {
			*buf = append(*buf, make([]byte, max(n, 4096))...)
		}
		m, err := syscall.Read(fd, (*buf)[n:])
		switch {
		case err == syscall.EINTR:
		case err != nil:
			return nil, false
		case m == 0:
			return (*buf)[:n], true
		default:
			n += m
		}
	}
}

// Pids lists every process in /proc.
func Pids() []int {
	entries, _ := os.ReadDir("/proc")
	pids := make([]int, 0, len(entries))
	for _, e := range entries {
		if p, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, p)
		}
	}
	return pids
}
