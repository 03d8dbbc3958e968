//go:build linux

package claude

import (
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"

	"github.com/ovrlrd/cloud/internal/procfs"
	"golang.org/x/sys/unix"
)

const fionread = unix.TIOCINQ // FIONREAD

// portableOnly leaves Linux's own guarantees (the subreaper, waitid) out,
// so that runs are supervised as on macOS; a test sets it before anything
// starts, to exercise that path.
var portableOnly bool

// sysProcAttr starts the CLI in a session (and so a process group) of its
// own, and kills it if this process dies.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
}

// reaper reaps the orphans a run leaves: once this process is a child
// subreaper, they become its children. They are told apart by their
// session: every process of a run is in the CLI's or in one it made, as
// no process can join another session, while the children the rest of
// this process starts stay in its session, and their os.Process waits for
// them. The CLIs are outside it too, so their pids are held here from
// their start to their Wait.
var reaper = struct {
	sync.Mutex
	clis map[int]bool
}{clis: map[int]bool{}}

// BecomeSubreaper makes this process a child subreaper
// (PR_SET_CHILD_SUBREAPER): processes a run leaves behind (a tool's child
// that started its own session and outlived the CLI) are re-parented to this
// process instead of to init, so that they can be found, killed and reaped.
// It also starts the reaper, which reaps such orphans as they exit. Call it
// once at start-up (main, TestMain); later calls return the first result.
// Anything else this process starts in a session of its own would be
// reaped as an orphan.
var BecomeSubreaper = sync.OnceValue(func() error {
	if portableOnly {
		return nil
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return os.NewSyscallError("prctl(PR_SET_CHILD_SUBREAPER)", err)
	}
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGCHLD)
	go func() { // for the life of the process
		for range c {
			reapOrphans()
		}
	}()
	return nil
})

// startCLI starts cmd and records its pid, with the reaper held off in
// between, so that a CLI that exits at once is left to its os.Process.
func startCLI(cmd *exec.Cmd) error {
	reaper.Lock()
	defer reaper.Unlock()
	if err := cmd.Start(); err != nil {
		return err
	}
	reaper.clis[cmd.Process.Pid] = true
	return nil
}

// forgetCLI is called once the CLI's os.Process has reaped it.
func forgetCLI(pid int) {
	reaper.Lock()
	delete(reaper.clis, pid)
	reaper.Unlock()
}

// reapOrphans reaps this process's zombie children that are not in its
// session and not a CLI. Only a run's processes leave the session (a
// process cannot join an existing one): a child this process starts in a
// session of its own must be started here, as a CLI, or its Wait loses it.
func reapOrphans() {
	reaper.Lock()
	defer reaper.Unlock()
	self := os.Getpid()
	sid, _ := unix.Getsid(0)
	for _, p := range allProcs() {
		if p.PPID == self && p.State == 'Z' && p.SID != sid && !reaper.clis[p.PID] {
			_, _ = unix.Wait4(p.PID, nil, unix.WNOHANG, nil)
		}
	}
}

// waitExited returns once pid has exited, without reaping it.
func waitExited(pid int) {
	if portableOnly {
		pollExited(pid)
		return
	}
	var info unix.Siginfo
	for unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil) == unix.EINTR {
	}
}

func allProcs() []procInfo {
	pids := procfs.Pids()
	out := make([]procInfo, 0, len(pids))
	buf := make([]byte, 1024)
	for _, pid := range pids {
		if p, ok := procfs.ReadStat(pid, &buf); ok {
			out = append(out, p)
		}
	}
	return out
}

func procStat(pid int) (procInfo, bool) { return procfs.ReadStat(pid, new([]byte)) }

// environ is the environment pid started with, as NUL-terminated
// VAR=value strings, in *buf; nil if unreadable.
func environ(pid int, buf *[]byte) []byte {
	b, _ := procfs.ReadFile("/proc/"+strconv.Itoa(pid)+"/environ", buf)
	return b
}
