//go:build linux

package claude

import (
	"strconv"

	"github.com/ovrlrd/cloud/internal/procfs"
)

// procfsTable is the process table as /proc shows it.
type procfsTable struct{}

var procs procTable = procfsTable{}

func (procfsTable) all() []procInfo {
	pids := procfs.Pids()
	buf := make([]byte, 1024)
	out := make([]procInfo, 0, len(pids))
	for _, pid := range pids {
		if p, ok := readStat(pid, &buf); ok {
			out = append(out, p)
		}
	}
	return out
}

func (procfsTable) stat(pid int) (procInfo, bool) {
	var buf []byte
	return readStat(pid, &buf)
}

func (procfsTable) environ(pid int, buf *[]byte) ([]byte, bool) {
	return procfs.ReadFile("/proc/"+strconv.Itoa(pid)+"/environ", buf)
}

// readStat reads what /proc/<pid>/stat says about a process.
func readStat(pid int, buf *[]byte) (procInfo, bool) {
	s, ok := procfs.ReadStat(pid, buf)
	return procInfo{pid: s.PID, ppid: s.PPID, pgrp: s.PGRP, sid: s.SID, state: s.State, start: s.Start}, ok
}
