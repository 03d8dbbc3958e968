//go:build linux

package sandbox

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ovrlrd/cloud/internal/procfs"
)

// supported: /proc tells every process's users, and root can run a child as
// any user.
const supported = true

// proc is what the sweep needs to know of a live process.
type proc struct {
	pid, ppid int
	uids      [4]int // real, effective, saved, filesystem
}

// readProc reads /proc/<pid>/status, which stays readable for processes
// that hide their memory and environment. A zombie is not alive; a leader
// that ended only its own thread shows state Z too, but its other threads
// still run: that is.
func readProc(pid int) (p proc, alive bool) {
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return proc{}, false
	}
	p.pid = pid
	threads, zombie := 0, false
	for line := range bytes.Lines(status) {
		key, val, _ := bytes.Cut(line, []byte(":"))
		f := bytes.Fields(val)
		if len(f) == 0 {
			continue
		}
		switch string(key) {
		case "State":
			zombie = f[0][0] == 'Z' || f[0][0] == 'X'
		case "Threads":
			threads, _ = strconv.Atoi(string(f[0]))
		case "PPid":
			p.ppid, _ = strconv.Atoi(string(f[0]))
		case "Uid":
			for i := range min(len(f), len(p.uids)) {
				p.uids[i], _ = strconv.Atoi(string(f[i]))
			}
		}
	}
	return p, !zombie || threads > 1
}

// processesOf lists the live processes that run as uid in any role (a
// setuid program started by the turn's user still has it as real user).
// Reading every process's status is slow (the kernel formats it), so the
// folders' owners, one stat each, pick the candidates first: a process's
// /proc folder belongs to its effective user, even when its entries are
// closed to that user. A program run set-user-id is missed here; killUser's
// kill(-1) reaches it anyway.
func processesOf(uid int) []proc {
	var out []proc
	var st syscall.Stat_t
	for _, pid := range procfs.Pids() {
		if syscall.Stat("/proc/"+strconv.Itoa(pid), &st) != nil || int(st.Uid) != uid {
			continue
		}
		if p, alive := readProc(pid); alive && slices.Contains(p.uids[:], uid) {
			out = append(out, p)
		}
	}
	return out
}

func running(uid int) bool { return len(processesOf(uid)) > 0 }

// ancestors are this process and every process above it.
func ancestors() map[int]bool {
	out := map[int]bool{}
	for pid := os.Getpid(); pid > 0 && !out[pid]; {
		out[pid] = true
		p, _ := readProc(pid)
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
	found := len(processesOf(uid))
	deadline := time.Now().Add(sweepFor)
	// At least once: what runs set-user-id is not among those found.
	for round := 1; round == 1 || running(uid) && time.Now().Before(deadline); round++ {
		kill := exec.Command("/bin/sh", "-c", "kill -KILL -1")
		kill.Dir, kill.Env = "/", []string{"PATH=/usr/bin:/bin"}
		kill.SysProcAttr = &syscall.SysProcAttr{Credential: credential(uid)}
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
			if !spared[p.pid] {
				targets = append(targets, p.pid)
			}
		}
		live := 0
		for _, pid := range targets {
			if _, alive := readProc(pid); alive {
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
	for queue := []int{pid}; len(queue) > 0; queue = queue[1:] {
		tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(queue[0]) + "/task/*/children")
		for _, t := range tasks {
			b, _ := os.ReadFile(t)
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

// scrubShared removes what uid left at the top of the folders any user may
// write to and in System V IPC, so the next turn of another user finds
// nothing of this one.
func scrubShared(uid int) {
	removeIPC(uid)
	for _, dir := range []string{os.TempDir(), "/tmp", "/var/tmp", "/dev/shm", "/dev/mqueue"} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			path := filepath.Join(dir, e.Name())
			var st syscall.Stat_t
			if syscall.Lstat(path, &st) == nil && int(st.Uid) == uid {
				_ = removeTree(path)
			}
		}
	}
}

// Exposed reports whether a live process's memory, environment and open
// files are open to its own user through /proc. The kernel hands them to
// root when the process is not dumpable, which the CLI is when its user may
// execute but not read its binary: then a tool cannot write into the CLI's
// stdout, nor read its token.
func Exposed(pid int) bool {
	p, alive := readProc(pid)
	if !alive || p.uids[0] == 0 {
		return false
	}
	// The folder keeps its owner; the entries in it change hands.
	var st syscall.Stat_t
	return syscall.Stat("/proc/"+strconv.Itoa(pid)+"/fd", &st) == nil && st.Uid != 0
}

// removeIPC removes the System V shared memory, semaphores and message
// queues uid owns or created: they outlive processes.
func removeIPC(uid int) {
	for file, call := range map[string]uintptr{"shm": syscall.SYS_SHMCTL, "sem": syscall.SYS_SEMCTL, "msg": syscall.SYS_MSGCTL} {
		b, _ := os.ReadFile("/proc/sysvipc/" + file)
		lines := strings.Split(string(b), "\n")
		head := strings.Fields(lines[0])
		uidCol, cuidCol := slices.Index(head, "uid"), slices.Index(head, "cuid")
		for _, line := range lines[1:] {
			f := strings.Fields(line)
			if uidCol < 0 || cuidCol < 0 || len(f) <= max(uidCol, cuidCol) {
				continue
			}
			if u := strconv.Itoa(uid); f[uidCol] != u && f[cuidCol] != u { // the kernel writes plain decimal
				continue
			}
			id, _ := strconv.Atoi(f[1])
			const ipcRMID = 0
			if call == syscall.SYS_SEMCTL {
				_, _, _ = syscall.Syscall6(call, uintptr(id), 0, ipcRMID, 0, 0, 0)
			} else {
				_, _, _ = syscall.Syscall(call, uintptr(id), ipcRMID, 0)
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
