//go:build linux || darwin

package claude

import (
	"bytes"
	"os"
	"syscall"
	"time"
)

// The supervision every system gets: the CLI leads a process group (and
// session) of its own, which is signalled first; then the process table is
// scanned for what left the group, by the run's marker and by descent.
// Linux adds a subreaper and waitid (proc_linux.go); macOS has neither, so
// this is all it has, and Linux tests run it alone (usePortableSupervision).

// maxExitPoll bounds how late pollExited notices that the CLI exited.
const maxExitPoll = 25 * time.Millisecond

// pollExited blocks until pid, a child of this process, has exited, without
// reaping it: its zombie keeps the pid and the process group id reserved
// while the run cleans up. Without waitid's WNOWAIT the only way to tell is
// to look at the process table.
func pollExited(pid int) error {
	for d := time.Millisecond; ; d = min(2*d, maxExitPoll) {
		p, ok := procs.stat(pid)
		if ok && (p.state == 'Z' || p.state == 'X') {
			return nil
		}
		if !ok && syscall.Kill(pid, 0) == syscall.ESRCH {
			return nil
		}
		time.Sleep(d)
	}
}

// scanRun finds every process that belongs to a run: those in the CLI's
// process group or session, those whose environment carries the run's
// marker, and their descendants and the CLI's (by parent chain), whether
// alive or zombie. The CLI itself is left out.
func scanRun(marker []byte, cliPid int) []procInfo {
	list := procs.all()
	var buf []byte
	all := make(map[int]procInfo, len(list))
	ours := make(map[int]bool)
	self := os.Getpid()
	for _, p := range list {
		if p.pid == self || p.pid <= 0 {
			continue
		}
		all[p.pid] = p
		if p.pid == cliPid || p.pgrp == cliPid || p.sid == cliPid {
			ours[p.pid] = true
			continue
		}
		if p.state == 'Z' {
			continue // a zombie has no environment left
		}
		if env, ok := procs.environ(p.pid, &buf); ok && bytes.Contains(env, marker) {
			ours[p.pid] = true
		}
	}
	// Descendants by parent chain (a child that dropped the marker).
	var out []procInfo
	for pid, p := range all {
		found := ours[pid]
		for q, hops := p, 0; !found && hops < 64; hops++ {
			pp, ok := all[q.ppid]
			if !ok {
				break
			}
			if ours[pp.pid] {
				found = true
			}
			q = pp
		}
		if found && pid != cliPid {
			ours[pid] = true
			out = append(out, p)
		}
	}
	return out
}

// signalProcs sends sig to the CLI's process group and to each process.
func signalProcs(cliPid int, ps []procInfo, sig syscall.Signal) {
	_ = syscall.Kill(-cliPid, sig)
	for _, p := range ps {
		if p.state != 'Z' {
			_ = syscall.Kill(p.pid, sig)
		}
	}
}

func alive(ps []procInfo) []procInfo {
	out := ps[:0:0]
	for _, p := range ps {
		if p.state != 'Z' && p.state != 'X' {
			out = append(out, p)
		}
	}
	return out
}
