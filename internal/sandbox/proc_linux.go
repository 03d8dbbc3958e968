//go:build linux

package sandbox

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/ovrlrd/cloud/internal/procfs"
)

// supported: /proc tells every process's users, and root can run a child as
// any user.
const supported = true

// proc is what the sweep needs to know of a process.
type proc struct {
	pid, ppid int
	uids      [4]int // real, effective, saved, filesystem
	// zombie: the process has exited and only waits to be reaped. A
	// leader that ended only its own thread shows state Z too, but its
	// other threads still run: that is not a zombie.
	zombie bool
}

// hasUID reports whether the process runs as uid in any of its roles: a
// setuid program started by the turn's user still has it as real user.
func (p proc) hasUID(uid int) bool {
	return p.uids[0] == uid || p.uids[1] == uid || p.uids[2] == uid || p.uids[3] == uid
}

// readProc reads /proc/<pid>/status, which stays readable for processes
// that hide their memory and environment.
func readProc(pid int) (proc, bool) {
	dir := "/proc/" + strconv.Itoa(pid)
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return proc{}, false
	}
	p := proc{pid: pid}
	threads, z := 0, false
	for line := range bytes.Lines(status) {
		key, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		f := bytes.Fields(val)
		switch string(key) {
		case "State":
			z = len(f) > 0 && (f[0][0] == 'Z' || f[0][0] == 'X')
		case "Threads":
			if len(f) > 0 {
				threads, _ = strconv.Atoi(string(f[0]))
			}
		case "PPid":
			if len(f) > 0 {
				p.ppid, _ = strconv.Atoi(string(f[0]))
			}
		case "Uid":
			for i := 0; i < len(f) && i < 4; i++ {
				p.uids[i], _ = strconv.Atoi(string(f[i]))
			}
		}
	}
	p.zombie = z && threads <= 1
	return p, true
}

// processesOf lists the processes of uid. Reading every process's status
// is slow (the kernel formats it), so the folders' owners, one stat each,
// pick the candidates first: a process's /proc folder belongs to its
// effective user, even when its entries are closed to that user. A program
// run set-user-id is missed here; killUser's kill(-1) reaches it anyway.
func processesOf(uid int) []proc {
	var out []proc
	var st syscall.Stat_t
	for _, pid := range procfs.Pids() {
		if syscall.Stat("/proc/"+strconv.Itoa(pid), &st) != nil || int(st.Uid) != uid {
			continue
		}
		if p, ok := readProc(pid); ok && p.hasUID(uid) {
			out = append(out, p)
		}
	}
	return out
}

// running reports whether any live process runs as uid.
func running(uid int) bool {
	for _, p := range processesOf(uid) {
		if !p.zombie {
			return true
		}
	}
	return false
}

// ancestors are this process and every process above it.
func ancestors() map[int]bool {
	out := map[int]bool{}
	for pid := os.Getpid(); pid > 0 && !out[pid]; {
		out[pid] = true
		p, ok := readProc(pid)
		if !ok {
			break
		}
		pid = p.ppid
	}
	return out
}

// sweepFor bounds a sweep: a process that cannot be killed in that time
// (a kernel wait) is left, and logged.
const sweepFor = 5 * time.Second

// killUser ends every process of uid, as root. kill(-1) from a process of
// that user signals all of them in one pass of the kernel's process list,
// and a fork racing it fails, so a process that keeps forking, or hops to a
// new process every few milliseconds, cannot slip between a scan and a
// kill. It returns how many processes were still running when it started.
func killUser(uid int) int {
	found := 0
	for _, p := range processesOf(uid) {
		if !p.zombie {
			found++
		}
	}
	deadline := time.Now().Add(sweepFor)
	// At least once: what runs set-user-id is not among those found.
	for round := 1; round == 1 || running(uid) && time.Now().Before(deadline); round++ {
		kill := exec.Command("/bin/sh", "-c", "kill -KILL -1")
		kill.Dir, kill.Env = "/", []string{"PATH=/usr/bin:/bin"}
		kill.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid), Groups: []uint32{}}}
		_ = kill.Run() // it signals itself out of the list; its status says nothing
		if round > 1 {
			// Killed processes take a moment to become zombies.
			time.Sleep(time.Duration(min(round, 20)) * time.Millisecond)
		}
	}
	return found
}

// killTurn ends, without root, every process that is this process's
// descendant (a tool's orphans come back to it, a child subreaper, whatever
// their group or session) or runs as uid, except this process and its
// ancestors. It kills until several rounds in a row find nothing, so a
// process that hops to a child faster than a scan is caught as the child,
// which is always a descendant. It returns how many live processes it
// killed.
func killTurn(uid int) int {
	spared := ancestors()
	seen := map[int]bool{}
	deadline := time.Now().Add(sweepFor)
	for clean := 0; clean < 3 && time.Now().Before(deadline); {
		targets := descendants(os.Getpid())
		for _, p := range processesOf(uid) {
			if !p.zombie && !spared[p.pid] {
				targets = append(targets, p.pid)
			}
		}
		live := 0
		for _, pid := range targets {
			if p, ok := readProc(pid); ok && !p.zombie {
				live++
				seen[pid] = true
			}
			// A kill reaches a zombie leader's running threads too.
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if live == 0 {
			clean++
			continue
		}
		clean = 0
		time.Sleep(time.Millisecond)
	}
	return len(seen)
}

// descendants lists every process below pid, from the children lists of
// each of their threads.
func descendants(pid int) []int {
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(p) + "/task/*/children")
		for _, t := range tasks {
			b, err := os.ReadFile(t)
			if err != nil {
				continue
			}
			for _, f := range bytes.Fields(b) {
				if c, err := strconv.Atoi(string(f)); err == nil {
					out = append(out, c)
					queue = append(queue, c)
				}
			}
		}
	}
	return out
}

// sharedDirs are the folders any user may write to.
var sharedDirs = []string{os.TempDir(), "/tmp", "/var/tmp", "/dev/shm", "/dev/mqueue"}

// scrubShared removes what uid left at the top of the world-writable
// folders and in System V IPC, so the next turn of another user finds
// nothing of this one.
func scrubShared(uid int) error {
	removeIPC(uid)
	seen := map[string]bool{}
	for _, dir := range sharedDirs {
		if seen[dir] {
			continue
		}
		seen[dir] = true
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			path := filepath.Join(dir, e.Name())
			var st syscall.Stat_t
			if syscall.Lstat(path, &st) == nil && int(st.Uid) == uid {
				_ = removeTree(path)
			}
		}
	}
	return nil
}

// HideSelf makes this process non-dumpable: processes of the same user can
// no longer read its environment (where Lambda puts the function's
// credentials), its memory or its open files through /proc, nor trace it.
func HideSelf() error {
	const prSetDumpable = 4
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetDumpable, 0, 0); e != 0 {
		return os.NewSyscallError("prctl(PR_SET_DUMPABLE)", e)
	}
	return nil
}

// Exposed reports whether a live process's memory, environment and open
// files are open to its own user through /proc. The kernel hands them to
// root when the process is not dumpable, which the CLI is when its user may
// execute but not read its binary: then a tool cannot write into the CLI's
// stdout, nor read its token.
func Exposed(pid int) bool {
	p, ok := readProc(pid)
	if !ok || p.zombie || p.uids[0] == 0 {
		return false
	}
	// The folder keeps its owner; the entries in it change hands.
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/"+strconv.Itoa(pid)+"/fd", &st); err != nil {
		return false
	}
	return st.Uid != 0
}

// removeIPC removes the System V shared memory, semaphores and message
// queues uid owns or created: they outlive processes.
func removeIPC(uid int) {
	for _, k := range []struct {
		file string
		call uintptr
	}{{"/proc/sysvipc/shm", syscall.SYS_SHMCTL}, {"/proc/sysvipc/sem", syscall.SYS_SEMCTL}, {"/proc/sysvipc/msg", syscall.SYS_MSGCTL}} {
		b, err := os.ReadFile(k.file)
		if err != nil {
			continue
		}
		lines := bytes.Split(b, []byte("\n"))
		head := bytes.Fields(lines[0])
		col := func(name string) int {
			for i, h := range head {
				if string(h) == name {
					return i
				}
			}
			return -1
		}
		idCol, uidCol, cuidCol := 1, col("uid"), col("cuid")
		for _, line := range lines[1:] {
			f := bytes.Fields(line)
			if uidCol < 0 || cuidCol < 0 || len(f) <= max(uidCol, cuidCol) {
				continue
			}
			owner, _ := strconv.Atoi(string(f[uidCol]))
			creator, _ := strconv.Atoi(string(f[cuidCol]))
			if owner != uid && creator != uid {
				continue
			}
			id, _ := strconv.Atoi(string(f[idCol]))
			const ipcRMID = 0
			if k.call == syscall.SYS_SEMCTL {
				_, _, _ = syscall.Syscall6(k.call, uintptr(id), 0, ipcRMID, 0, 0, 0)
			} else {
				_, _, _ = syscall.Syscall(k.call, uintptr(id), ipcRMID, 0)
			}
		}
	}
}

// lockDir holds one lock file per user id a turn holds, so that servers
// sharing a machine never hand out the same one. Only root may write it.
var lockDir = "/run/ovrlrd-sandbox"

func prepareLocks() error {
	if fi, err := os.Stat("/run"); err != nil || !fi.IsDir() {
		lockDir = filepath.Join(os.TempDir(), "ovrlrd-sandbox-uids")
	}
	if err := os.MkdirAll(lockDir, 0o700); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(lockDir, &st); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR || st.Uid != 0 || st.Mode&0o022 != 0 {
		return fmt.Errorf("sandbox: %s must be a folder only root can write", lockDir)
	}
	return nil
}

// lockUID takes uid's lock without waiting; the lock lasts as long as the
// returned file is open (and no longer than this process).
func lockUID(uid uint32) (*os.File, bool) {
	f, err := os.OpenFile(filepath.Join(lockDir, strconv.FormatUint(uint64(uid), 10)), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	return f, true
}

func privateUmask() { syscall.Umask(0o077) }
