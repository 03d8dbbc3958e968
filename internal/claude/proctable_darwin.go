//go:build darwin

package claude

import "golang.org/x/sys/unix"

// sysctlTable is the process table as macOS's sysctl shows it: kern.proc
// for each process's parent, group and state, kern.procargs2 for the
// environment it started with (readable for this user's processes).
type sysctlTable struct{}

var procs procTable = sysctlTable{}

func (sysctlTable) all() []procInfo {
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

func (sysctlTable) stat(pid int) (procInfo, bool) {
	kp, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil || int(kp.Proc.P_pid) != pid {
		return procInfo{}, false
	}
	return fromKinfo(kp), true
}

func (sysctlTable) environ(pid int, _ *[]byte) ([]byte, bool) {
	b, err := unix.SysctlRaw("kern.procargs2", pid)
	if err != nil {
		return nil, false
	}
	return procargsEnv(b)
}

// p_stat values (sys/proc.h); any other is asleep.
const (
	sIdl  = 1
	sRun  = 2
	sStop = 4
	sZomb = 5
)

func fromKinfo(kp *unix.KinfoProc) procInfo {
	p := procInfo{
		pid:   int(kp.Proc.P_pid),
		ppid:  int(kp.Eproc.Ppid),
		pgrp:  int(kp.Eproc.Pgid),
		start: uint64(kp.Proc.P_starttime.Sec)*1e6 + uint64(kp.Proc.P_starttime.Usec),
	}
	// kinfo_proc holds the session only as a kernel pointer.
	if p.pid > 0 {
		p.sid, _ = unix.Getsid(p.pid)
	}
	switch kp.Proc.P_stat {
	case sZomb:
		p.state = 'Z'
	case sStop:
		p.state = 'T'
	case sRun:
		p.state = 'R'
	case sIdl:
		p.state = 'I'
	default:
		p.state = 'S'
	}
	return p
}
