//go:build darwin

package claude

import (
	"os/exec"
	"syscall"

	"github.com/ovrlrd/cloud/internal/claude/procargs"
	"golang.org/x/sys/unix"
)

// macOS has no child subreaper and no waitid that leaves a child unreaped:
// a run's orphans go to launchd, which reaps them, and are found by the
// CLI's session and group, the run's marker and descent. One that also
// leaves the group and scrubs its environment is not found (the README
// says so).

// fionread is FIONREAD (sys/filio.h), which x/sys does not name for macOS.
const fionread = 0x4004667f

// portableOnly: there is nothing else here (Linux tests select it).
var portableOnly = true

// BecomeSubreaper does nothing on macOS, which has no subreapers.
func BecomeSubreaper() error { return nil }

// sysProcAttr starts the CLI in a session (and so a process group) of its
// own. There is no parent-death signal: a CLI outlives a server that
// crashes.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setsid: true, Credential: cred}
}

// Nothing of a run but the CLI becomes this process's child, and its
// os.Process reaps it.
func startCLI(cmd *exec.Cmd) error { return cmd.Start() }
func forgetCLI(int)                {}
func reapOrphans()                 {}
func waitExited(pid int)           { pollExited(pid) }

func allProcs() []procInfo {
	kps, err := unix.SysctlKinfoProcSlice("kern.proc.all")
	if err != nil {
		return nil
	}
	out := make([]procInfo, 0, len(kps))
	for i := range kps {
		out = append(out, fromKinfo(&kps[i]))
	}
	return out
}

func procStat(pid int) (procInfo, bool) {
	kp, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil || int(kp.Proc.P_pid) != pid {
		return procInfo{}, false
	}
	return fromKinfo(kp), true
}

// environ is the environment pid started with (kern.procargs2, readable
// for this user's processes), as NUL-terminated VAR=value strings; nil if
// unreadable.
func environ(pid int, _ *[]byte) []byte {
	b, err := unix.SysctlRaw("kern.procargs2", pid)
	if err != nil {
		return nil
	}
	env, _ := procargs.Env(b)
	return env
}

func fromKinfo(kp *unix.KinfoProc) procInfo {
	p := procInfo{
		PID:   int(kp.Proc.P_pid),
		PPID:  int(kp.Eproc.Ppid),
		PGRP:  int(kp.Eproc.Pgid),
		State: 'S',
	}
	// kinfo_proc holds the session only as a kernel pointer.
	if p.PID > 0 {
		p.SID, _ = unix.Getsid(p.PID)
	}
	if kp.Proc.P_stat == 5 { // SZOMB (sys/proc.h)
		p.State = 'Z'
	}
	return p
}
