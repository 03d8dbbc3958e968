package claude

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/ovrlrd/cloud/internal/procfs"
	"golang.org/x/sys/unix"
)

// A run owns three things by id: the CLI's pid, recorded at Start; its
// session and process group, whose id is that pid (the CLI starts both);
// and its marker, for the processes that leave them. Linux adds a child
// subreaper and waitid (proc_linux.go); macOS has neither (proc_darwin.go).

// procInfo is what the process table says about a process (on macOS too,
// where sysctl fills it in).
type procInfo = procfs.Stat

// sweepFor bounds the kills after the CLI's exit: a process that cannot be
// killed in that time (a kernel wait) is left.
const sweepFor = 10 * time.Second

// terminate is the CLI's Cancel: exec calls it when the run's context ends
// before the CLI is waited for, then sends it SIGKILL after KillGrace
// (WaitDelay). SIGTERM goes to the CLI's group and every process of the run;
// supervise kills what outlives the grace.
func (r *Run) terminate(pid int) error {
	if r.exited.Load() {
		return os.ErrProcessDone // it ended by itself: no reason to report
	}
	r.mu.Lock()
	r.reason, r.graceEnd = r.why(), time.Now().Add(r.opts.KillGrace)
	r.mu.Unlock()
	signalProcs(pid, scanRun(r.marker, pid), syscall.SIGTERM)
	return nil
}

// why names the run context's cause as Exit.Reason does: Stop's reason as
// given, the caller's context's end as ErrTimeout or ErrCancelled.
func (r *Run) why() error {
	cause := context.Cause(r.runCtx)
	if r.ctx.Err() == nil || !errors.Is(cause, context.Cause(r.ctx)) {
		return cause
	}
	switch {
	case errors.Is(cause, context.DeadlineExceeded):
		return ErrTimeout
	case cause == context.Canceled:
		return ErrCancelled
	}
	return fmt.Errorf("%w: %w", ErrCancelled, cause)
}

// supervise waits for the CLI to exit, ends whatever the run left behind,
// and only then reaps the CLI: until then its zombie keeps its pid, and so
// its group's id, from being reused.
func (r *Run) supervise() {
	defer r.stop(nil) // after cmd.Wait, which ends exec's watch of the context
	pid := r.cmd.Process.Pid
	waitExited(pid)
	r.exited.Store(true)
	_ = r.stdout.SetReadDeadline(time.Now()) // wake the readers to take the cut
	_ = r.stderr.SetReadDeadline(time.Now())

	r.mu.Lock()
	graceEnd := r.graceEnd // zero unless stopped
	r.exit.Reason = r.reason
	r.mu.Unlock()
	for giveUp := time.Now().Add(r.opts.KillGrace + sweepFor); time.Now().Before(giveUp); time.Sleep(10 * time.Millisecond) {
		left := scanRun(r.marker, pid)
		if len(left) == 0 {
			break
		}
		if time.Now().After(graceEnd) {
			signalProcs(pid, left, syscall.SIGKILL)
		}
	}
	reapOrphans()
	_ = r.cmd.Wait()
	forgetCLI(pid)
	if st := r.cmd.ProcessState; st != nil {
		r.exit.Code = st.ExitCode()
		if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.exit.Signal = ws.Signal()
		}
	}
}

// scanRun finds the live processes of a run but the CLI: those in the
// CLI's session or process group, those whose environment carries the
// marker, and the descendants of all these and of the CLI.
func scanRun(marker []byte, cli int) []procInfo {
	all := map[int]procInfo{}
	ours := map[int]bool{}
	self := os.Getpid()
	var buf []byte
	for _, p := range allProcs() {
		all[p.PID] = p
		ours[p.PID] = p.PID != self && (p.PID == cli || p.PGRP == cli || p.SID == cli ||
			alive(p) && bytes.Contains(environ(p.PID, &buf), marker)) // a zombie has no environment left
	}
	var out []procInfo
	for pid, p := range all {
		for q, hops := p, 0; !ours[pid] && hops < 64; hops++ {
			var ok bool
			if q, ok = all[q.PPID]; !ok {
				break
			}
			ours[pid] = ours[q.PID]
		}
		if ours[pid] && pid != cli && alive(p) {
			out = append(out, p)
		}
	}
	return out
}

// signalProcs sends sig to the CLI's process group and to each process.
func signalProcs(cli int, ps []procInfo, sig syscall.Signal) {
	if cli <= 0 {
		return // -cli would name this process's own group
	}
	_ = syscall.Kill(-cli, sig)
	for _, p := range ps {
		_ = syscall.Kill(p.PID, sig)
	}
}

func alive(p procInfo) bool { return p.State != 'Z' && p.State != 'X' }

// pollExited returns once pid, a child of this process, has exited, without
// reaping it. Without waitid's WNOWAIT only the process table tells.
func pollExited(pid int) {
	for d := time.Millisecond; ; d = min(2*d, 25*time.Millisecond) {
		if p, ok := procStat(pid); !ok || !alive(p) {
			return
		}
		time.Sleep(d)
	}
}

// pendingBytes is how many bytes a pipe holds.
func pendingBytes(f *os.File) int {
	n := 0
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), fionread) })
	}
	return n
}
