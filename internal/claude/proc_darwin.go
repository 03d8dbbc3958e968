//go:build darwin

package claude

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// macOS has no child subreaper and no waitid that leaves a child unreaped,
// so runs get only the supervision in proc_supervise.go: the CLI's group,
// then the run's marker and descent. An orphan goes to launchd, which reaps
// it; one that also left the group and scrubbed its environment is not
// found (the README says so).

// BecomeSubreaper does nothing on macOS, which has no subreapers: a run's
// orphans are re-parented to launchd, and found by their marker.
func BecomeSubreaper() error { return nil }

// portableOnly: there is nothing else here (Linux tests select it with
// usePortableSupervision).
const portableOnly = true

func usePortableSupervision() {}

// sysProcAttr starts the CLI in a session (and so a process group) of its
// own, so one signal reaches it and the children that stay in its group.
// There is no parent-death signal: a CLI outlives a server that crashes.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setsid: true, Credential: cred}
}

func waitExited(pid int) error { return pollExited(pid) }

// fionread is FIONREAD (sys/filio.h: _IOR('f', 127, int)), which x/sys
// does not name for macOS.
const fionread = 0x4004667f

// pendingBytes reports how many bytes can be read from a pipe without
// blocking.
func pendingBytes(f *os.File) int {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	_ = rc.Control(func(fd uintptr) {
		if v, err := unix.IoctlGetInt(int(fd), fionread); err == nil {
			n = v
		}
	})
	return n
}

func readStat(pid int, _ *[]byte) (procInfo, bool) { return procs.stat(pid) }

// Without a subreaper nothing of a run becomes this process's child but the
// CLI, which its os.Process reaps: there is nothing to remember or reap.
func rememberProcs([]procInfo) {}
func registerCLI(int, bool)    {}
func reapOrphans() int         { return 0 }

func platformCheck() error { return nil }
