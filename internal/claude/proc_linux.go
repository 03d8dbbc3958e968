//go:build linux

package claude

import (
	"bytes"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"unsafe"

	"github.com/ovrlrd/cloud/internal/procfs"
)

const (
	prSetChildSubreaper = 36 // PR_SET_CHILD_SUBREAPER
	pPID                = 1  // P_PID for waitid
)

// sysProcAttr starts the CLI in a session (and so a process group) of its
// own, so one signal reaches it and the children that stay in its group, and
// kills it if this process dies.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
}

// portableOnly leaves Linux's own guarantees (the subreaper, waitid) out,
// so that runs are supervised as on macOS; tests set it
// (usePortableSupervision) before anything starts, to exercise that path.
var portableOnly bool

func usePortableSupervision() { portableOnly = true }

var subreaper struct {
	once sync.Once
	err  error
}

// BecomeSubreaper makes this process a child subreaper
// (PR_SET_CHILD_SUBREAPER): processes a run leaves behind (a tool's child
// that started its own session and outlived the CLI) are re-parented to this
// process instead of to init, so that they can be found, killed and reaped.
// It also starts the reaper, which reaps such orphans as they exit. Call it
// once at start-up (main, TestMain); later calls return the first result.
//
// The reaper never reaps a child that an os.Process still tracks (Go keeps a
// pidfd for each child it starts, from the fork until Wait), so os/exec users
// elsewhere in the process keep working (a child forked with
// syscall.ForkExec directly has no such protection). On a kernel without
// pidfds it reaps only processes it saw carrying a run's marker.
func BecomeSubreaper() error {
	subreaper.once.Do(func() {
		if portableOnly {
			return
		}
		if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); e != 0 {
			subreaper.err = os.NewSyscallError("prctl(PR_SET_CHILD_SUBREAPER)", e)
			return
		}
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGCHLD)
		go func() {
			for range c {
				reapOrphans()
			}
		}()
	})
	return subreaper.err
}

// waitExited blocks until pid has exited, without reaping it: the zombie
// keeps the pid and the process group id reserved while the run cleans up.
func waitExited(pid int) error {
	if portableOnly {
		return pollExited(pid)
	}
	var info [128]byte // siginfo_t
	for {
		_, _, e := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&info[0])), syscall.WEXITED|syscall.WNOWAIT, 0, 0)
		switch e {
		case 0:
			return nil
		case syscall.EINTR:
			continue
		default:
			return os.NewSyscallError("waitid", e)
		}
	}
}

// pendingBytes reports how many bytes can be read from a pipe without
// blocking.
func pendingBytes(f *os.File) int {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0
	}
	var n int32
	_ = rc.Control(func(fd uintptr) {
		_, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&n)))
		if e != 0 {
			n = 0
		}
	})
	return int(n)
}

// orphans is what the reaper knows: the processes runs found (by pid, with
// their start time so a reused pid is not mistaken for them), and the CLI
// pids whose os.Process will reap them.
var orphans = struct {
	sync.Mutex
	known        map[int]uint64
	cli          map[int]bool
	pidfdChecked bool
	pidfdWorks   bool
}{known: map[int]uint64{}, cli: map[int]bool{}}

func rememberProcs(ps []procInfo) {
	if portableOnly {
		return
	}
	orphans.Lock()
	for _, p := range ps {
		orphans.known[p.pid] = p.start
	}
	orphans.Unlock()
}

func registerCLI(pid int, add bool) {
	if portableOnly {
		return
	}
	orphans.Lock()
	defer orphans.Unlock()
	if !add {
		delete(orphans.cli, pid)
		return
	}
	orphans.cli[pid] = true
	if !orphans.pidfdChecked {
		orphans.pidfdChecked = true
		orphans.pidfdWorks = trackedPids()[pid]
	}
}

// reapOrphans reaps this process's zombie children that nobody else will
// wait for. It returns how many it reaped.
func reapOrphans() int {
	if portableOnly {
		return 0
	}
	orphans.Lock()
	defer orphans.Unlock()
	self := os.Getpid()
	buf := make([]byte, 1024)
	var zombies []procInfo
	for _, pid := range procfs.Pids() {
		if p, ok := readStat(pid, &buf); ok && p.ppid == self && p.state == 'Z' {
			zombies = append(zombies, p)
		}
	}
	if len(zombies) == 0 {
		return 0
	}
	tracked := trackedPids()
	n := 0
	for _, z := range zombies {
		if orphans.cli[z.pid] || tracked[z.pid] {
			continue
		}
		start, known := orphans.known[z.pid]
		if known && start != z.start {
			known = false
		}
		if !known && !orphans.pidfdWorks {
			continue
		}
		var ws syscall.WaitStatus
		if got, err := syscall.Wait4(z.pid, &ws, syscall.WNOHANG, nil); err == nil && got == z.pid {
			n++
		}
		delete(orphans.known, z.pid)
	}
	// Forget processes that are gone.
	for pid, start := range orphans.known {
		if p, ok := readStat(pid, &buf); !ok || p.start != start {
			delete(orphans.known, pid)
		}
	}
	return n
}

// trackedPids returns the pids that this process holds a pidfd for: the
// children an os.Process will wait for.
func trackedPids() map[int]bool {
	out := map[int]bool{}
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return out
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	buf := make([]byte, 512)
	for _, n := range names {
		link, err := os.Readlink("/proc/self/fd/" + n)
		if err != nil || link != "anon_inode:[pidfd]" {
			continue
		}
		info, ok := procfs.ReadFile("/proc/self/fdinfo/"+n, &buf)
		if !ok {
			continue
		}
		i := bytes.Index(info, []byte("\nPid:"))
		if i < 0 {
			continue
		}
		f := bytes.Fields(info[i+5:])
		if len(f) > 0 {
			if pid, err := strconv.Atoi(string(f[0])); err == nil && pid > 0 {
				out[pid] = true
			}
		}
	}
	return out
}

func platformCheck() error { return nil }
