//go:build linux

package claude

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// procfs is the process table as /proc shows it.
type procfs struct{}

var procs procTable = procfs{}

func (procfs) all() []procInfo {
	pids := listPids()
	buf := make([]byte, 1024)
	out := make([]procInfo, 0, len(pids))
	for _, pid := range pids {
		if p, ok := readStat(pid, &buf); ok {
			out = append(out, p)
		}
	}
	return out
}

func (procfs) stat(pid int) (procInfo, bool) {
	var buf []byte
	return readStat(pid, &buf)
}

func (procfs) environ(pid int, buf *[]byte) ([]byte, bool) {
	return readSmall("/proc/"+strconv.Itoa(pid)+"/environ", buf)
}

// readStat reads what /proc/<pid>/stat says about a process.
func readStat(pid int, buf *[]byte) (procInfo, bool) {
	b, ok := readSmall("/proc/"+strconv.Itoa(pid)+"/stat", buf)
	if !ok {
		return procInfo{}, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return procInfo{}, false
	}
	f := bytes.Fields(b[i+2:])
	if len(f) < 20 || len(f[0]) != 1 {
		return procInfo{}, false
	}
	p := procInfo{pid: pid, state: f[0][0]}
	p.ppid, _ = strconv.Atoi(string(f[1]))
	p.pgrp, _ = strconv.Atoi(string(f[2]))
	p.sid, _ = strconv.Atoi(string(f[3]))
	p.start, _ = strconv.ParseUint(string(f[19]), 10, 64) // clock ticks since boot
	return p, true
}

// readSmall reads a /proc file into *buf, growing it if needed. The result
// is valid until the next call with the same buffer.
func readSmall(name string, buf *[]byte) ([]byte, bool) {
	fd, err := syscall.Open(name, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, false
	}
	defer syscall.Close(fd)
	b := *buf
	if len(b) == 0 {
		b = make([]byte, 4096)
		*buf = b
	}
	n := 0
	for {
		if n == len(b) {
			nb := make([]byte, 2*len(b))
			copy(nb, b[:n])
			b = nb
			*buf = b
		}
		m, err := syscall.Read(fd, b[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, false
		}
		if m == 0 {
			return b[:n], true
		}
		n += m
	}
}

// listPids returns the pid of every process in /proc.
func listPids() []int {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	pids := make([]int, 0, len(names))
	for _, n := range names {
		if n == "" || n[0] < '0' || n[0] > '9' {
			continue
		}
		if p, err := strconv.Atoi(n); err == nil {
			pids = append(pids, p)
		}
	}
	return pids
}
