//go:build linux

package sandbox

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/claude"
	"github.com/ovrlrd/cloud/internal/devkit/sandboxtest"
	"github.com/ovrlrd/cloud/internal/procfs"
)

// In Exclusive mode the server and the CLI share one unprivileged user, as
// in Lambda. The test runs that as a user of its own: a parent helper (the
// runtime, the server's ancestor) starts a bystander of the same user and
// the server; the server, a child subreaper as the stream function is,
// starts a process before the turn, acquires a box, lets "tools" escape in
// every way, and releases. Only the server and its ancestor may be left.
func TestExclusiveSweepSparesOnlyTheServerAndItsAncestors(t *testing.T) {
	needRoot(t)
	root := sandboxtest.Dir(t)
	// Lambda's /tmp is the function user's own.
	if err := os.Chown(root, helperUID, helperUID); err != nil {
		t.Fatal(err)
	}
	out, err := runHelper(t, helperUID, "ancestor", root)
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	for _, want := range []string{"escapes running", "nothing left", "bystander dead", "ancestor alive", "roots empty"} {
		if !strings.Contains(out, want) {
			t.Errorf("helper output lacks %q:\n%s", want, out)
		}
	}
}

func TestHideSelfClosesProcToTheSameUser(t *testing.T) {
	needRoot(t)
	for _, hide := range []bool{false, true} {
		role := "show"
		if hide {
			role = "hide"
		}
		cmd := helperCmd(t, helperUID2, role, "")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		if strings.TrimSpace(line) != "ready" {
			t.Fatalf("helper said %q", line)
		}
		pid := strconv.Itoa(cmd.Process.Pid)
		out, readErr := asUser(t, helperUID2, "tr '\\0' '\\n' < /proc/"+pid+"/environ")
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		leaked := strings.Contains(out, "SANDBOX_TEST_CANARY=canary")
		if hide && (leaked || readErr == nil) {
			t.Errorf("a hidden process's environment was read by its own user: %s", out)
		}
		if !hide && !leaked {
			t.Errorf("control: a dumpable process's environment should be readable by its user (%v %s)", readErr, out)
		}
	}
}

// helperExe is a copy of this test binary that other users can run (go
// test builds it in a folder only root can enter). It is readable: an
// execute-only binary would make the helper non-dumpable by itself.
func helperExe(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(sandboxtest.Dir(t), "sandbox.test")
	if err := os.WriteFile(copied, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(copied, 0o755); err != nil { // past the sandbox's umask
		t.Fatal(err)
	}
	return copied
}

func helperCmd(t *testing.T, uid int, role, root string) *exec.Cmd {
	endTestUsers(t)
	cmd := exec.Command(helperExe(t))
	cmd.Env = []string{"PATH=/usr/bin:/bin", "SANDBOX_TEST_ROLE=" + role, "SANDBOX_TEST_ROOT=" + root, "SANDBOX_TEST_CANARY=canary"}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid), Groups: []uint32{}}}
	return cmd
}

func runHelper(t *testing.T, uid int, role, root string) (string, error) {
	t.Helper()
	out, err := helperCmd(t, uid, role, root).CombinedOutput()
	return string(out), err
}

// helper is the test binary re-executed in a role.
func helper(role string) int {
	root := os.Getenv("SANDBOX_TEST_ROOT")
	switch role {
	case "show", "hide":
		if role == "hide" {
			if err := procfs.HideSelf(); err != nil {
				fmt.Println(err)
				return 1
			}
		}
		fmt.Println("ready")
		waitForSignal()
	case "zombie-leader":
		zombieLeaderRole()
	case "ancestor":
		exe, _ := os.Executable()
		bystander := exec.Command("/bin/sh", "-c", "while :; do sleep 1; done")
		if err := bystander.Start(); err != nil {
			fmt.Println(err)
			return 1
		}
		server := exec.Command(exe)
		server.Env = append(os.Environ(), "SANDBOX_TEST_ROLE=server", "SANDBOX_TEST_BYSTANDER="+strconv.Itoa(bystander.Process.Pid))
		out, err := server.CombinedOutput()
		fmt.Print(string(out))
		if err != nil {
			fmt.Println("server:", err)
			return 1
		}
		fmt.Println("ancestor alive")
		return 0
	case "server":
		return exclusiveServer(root)
	}
	return 2
}

func waitForSignal() {
	// A bare select{} would end the process as deadlocked.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	<-stop
}

// zombieLeaderRole leaves its session, then ends its main thread alone: the
// process shows as a zombie while another thread runs on.
func zombieLeaderRole() {
	runtime.LockOSThread()
	_, _ = syscall.Setsid()
	started := make(chan struct{})
	go func() {
		runtime.LockOSThread() // a thread of its own, which outlives the leader
		close(started)
		waitForSignal()
	}()
	<-started
	_, _, _ = syscall.RawSyscall(syscall.SYS_EXIT, 0, 0, 0)
}

func exclusiveServer(root string) int {
	if err := claude.BecomeSubreaper(); err != nil {
		fmt.Println(err)
		return 1
	}
	older := exec.Command("/bin/sh", "-c", "while :; do sleep 1; done")
	if err := older.Start(); err != nil {
		fmt.Println(err)
		return 1
	}
	p, err := New(Config{Mode: Exclusive, Roots: []string{filepath.Join(root, "work"), filepath.Join(root, "claude")}})
	if err != nil {
		fmt.Println(err)
		return 1
	}
	b, err := p.Acquire()
	if err != nil {
		fmt.Println(err)
		return 1
	}
	if err := b.Own(filepath.Join(root, "claude", "some-conversation")); err != nil {
		fmt.Println(err)
		return 1
	}
	uid := os.Getuid()
	exe, _ := os.Executable()
	hop := filepath.Join(b.TempDir(), "hop.sh")
	_ = os.WriteFile(hop, []byte("#!/bin/sh\necho x >> \"$1\"\n\"$0\" \"$1\" &\n"), 0o755)
	for _, script := range []string{
		`(env -u OVRLRD_RUN setsid sh -c 'while :; do sleep 1; done' >/dev/null 2>&1 &)`,
		`(setsid ` + hop + ` ` + filepath.Join(b.TempDir(), "hops") + ` >/dev/null 2>&1 &)`,
		`(SANDBOX_TEST_ROLE=zombie-leader ` + exe + ` >/dev/null 2>&1 &)`,
	} {
		if out, err := exec.Command("/bin/sh", "-c", script).CombinedOutput(); err != nil {
			fmt.Println("tool:", err, string(out))
			return 1
		}
	}
	for deadline := time.Now().Add(time.Minute); ; {
		hops, _ := os.ReadFile(filepath.Join(b.TempDir(), "hops"))
		if zombieLeader(uid) && len(hops) > 200 {
			fmt.Println("escapes running")
			break
		}
		if time.Now().After(deadline) {
			fmt.Println("the escapes never ran")
			return 1
		}
	}
	if err := b.Release(); err != nil {
		fmt.Println(err)
		return 1
	}
	spared := ancestors()
	left := 0
	for range 100 {
		for _, pr := range processesOf(uid) {
			if !spared[pr.pid] {
				left++
			}
		}
	}
	if left == 0 {
		fmt.Println("nothing left")
	}
	if pid, _ := strconv.Atoi(os.Getenv("SANDBOX_TEST_BYSTANDER")); pid > 0 {
		if _, alive := readProc(pid); !alive {
			fmt.Println("bystander dead")
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(root, "claude")); len(entries) == 0 {
		fmt.Println("roots empty")
	}
	return 0
}
