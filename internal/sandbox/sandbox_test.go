//go:build linux

package sandbox

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/sandboxtest"
)

// Test users: far from any real account, and apart per test so that
// packages running in parallel never share one.
var (
	testRange  = Range{First: 1_600_100_000, Last: 1_600_100_009}
	helperUID  = 1_600_100_050
	helperUID2 = 1_600_100_051
)

func TestMain(m *testing.M) {
	if role := os.Getenv("SANDBOX_TEST_ROLE"); role != "" {
		os.Exit(helper(role))
	}
	os.Exit(m.Run())
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("switching to another user needs root; as an unprivileged user this machine already is the Exclusive case, tested in Lambda's emulator")
	}
}

// endTestUsers kills whatever a failed test left running as its users.
func endTestUsers(t *testing.T) {
	t.Cleanup(func() {
		for uid := int(testRange.First); uid <= int(testRange.Last); uid++ {
			killUser(uid)
		}
		killUser(helperUID)
		killUser(helperUID2)
	})
}

func newPool(t *testing.T, m Mode) (*Pool, string) {
	t.Helper()
	endTestUsers(t)
	root := sandboxtest.Dir(t)
	p, err := New(Config{Mode: m, UIDs: testRange, Roots: []string{filepath.Join(root, "work"), filepath.Join(root, "claude")}})
	if err != nil {
		t.Fatal(err)
	}
	return p, root
}

// asUser runs a shell command as uid and returns its output.
func asUser(t *testing.T, uid int, script string) (string, error) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid), Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// waitFor polls cond until it holds, failing the test after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// liveThreads lists the running threads of uid as "pid/tid", read thread
// by thread: independent of how the code under test reads processes.
func liveThreads(uid int) []string {
	var out []string
	tasks, _ := filepath.Glob("/proc/[0-9]*/task/[0-9]*/status")
	for _, path := range tasks {
		status, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		var state string
		u := -1
		for line := range strings.Lines(string(status)) {
			if f := strings.Fields(line); len(f) > 1 {
				switch f[0] {
				case "State:":
					state = f[1]
				case "Uid:":
					u, _ = strconv.Atoi(f[1])
				}
			}
		}
		if u == uid && state != "Z" && state != "X" {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(path, "/proc/"), "/status"))
		}
	}
	return out
}

// survivors looks for threads of uid many times over: a process that hops
// to a new child every few milliseconds is missed by one scan, not by a
// hundred.
func survivors(uid int) []string {
	for range 100 {
		if left := liveThreads(uid); len(left) > 0 {
			return left
		}
	}
	return nil
}

// zombieLeader reports whether a process of uid shows as a zombie while
// another of its threads still runs.
func zombieLeader(uid int) bool {
	for _, thread := range liveThreads(uid) {
		pid, tid, _ := strings.Cut(thread, "/task/")
		status, _ := os.ReadFile("/proc/" + pid + "/status")
		if pid != tid && strings.Contains(string(status), "State:\tZ") {
			return true
		}
	}
	return false
}

// The ways a hostile tool tries to outlive its turn, each with how to see
// that it runs. dir is a folder the attack may write to.
var escapes = []struct {
	name    string
	start   func(t *testing.T, uid int, dir string)
	running func(uid int, dir string) bool
}{
	{"drops its marker, group and session", func(t *testing.T, uid int, _ string) {
		if out, err := asUser(t, uid, `(env -u OVRLRD_RUN setsid sh -c 'while :; do sleep 1; done' >/dev/null 2>&1 &); echo started`); err != nil || !strings.Contains(out, "started") {
			t.Fatalf("escape: %v %s", err, out)
		}
	}, func(uid int, _ string) bool { return running(uid) }},
	{"hops to a new process every few milliseconds", func(t *testing.T, uid int, dir string) {
		hop := filepath.Join(dir, "hop.sh")
		if err := os.WriteFile(hop, []byte("#!/bin/sh\necho x >> \"$1\"\n\"$0\" \"$1\" &\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(hop, 0o755); err != nil { // past the sandbox's umask
			t.Fatal(err)
		}
		if out, err := asUser(t, uid, `(setsid `+hop+` `+filepath.Join(dir, "hops")+` >/dev/null 2>&1 &); echo started`); err != nil {
			t.Fatalf("hop: %v %s", err, out)
		}
	}, func(_ int, dir string) bool {
		b, _ := os.ReadFile(filepath.Join(dir, "hops"))
		return len(b) > 200
	}},
	{"ends its main thread and runs on in another", func(t *testing.T, uid int, _ string) {
		if err := helperCmd(t, uid, "zombie-leader", "").Start(); err != nil {
			t.Fatal(err)
		}
	}, func(uid int, _ string) bool { return zombieLeader(uid) }},
}

func TestPerTurnUserSweepEndsEveryEscape(t *testing.T) {
	needRoot(t)
	for _, e := range escapes {
		t.Run(e.name, func(t *testing.T) {
			p, _ := newPool(t, PerTurnUser)
			b, err := p.Acquire()
			if err != nil {
				t.Fatal(err)
			}
			uid := int(b.Credential().Uid)
			e.start(t, uid, b.TempDir())
			waitFor(t, "the escape", func() bool { return e.running(uid, b.TempDir()) })
			if err := b.Release(); err != nil {
				t.Fatal(err)
			}
			if left := survivors(uid); len(left) > 0 {
				t.Fatalf("processes of the turn's user outlived its release: %v", left)
			}
		})
	}
}

// Two servers on one machine, with the same range and starting point,
// never hand out the same user.
func TestServersNeverShareAUser(t *testing.T) {
	needRoot(t)
	one := Range{First: testRange.First, Last: testRange.First + 1}
	a, _ := newPool(t, PerTurnUser)
	b, _ := newPool(t, PerTurnUser)
	a.cfg.UIDs, a.next, b.cfg.UIDs, b.next = one, one.First, one, one.First
	ba, err := a.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	defer ba.Release()
	bb, err := b.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	defer bb.Release()
	if ba.Credential().Uid == bb.Credential().Uid {
		t.Fatalf("both servers run turns as %d", ba.Credential().Uid)
	}
	if _, err := a.Acquire(); err == nil {
		t.Fatal("a third turn got a user the range does not have")
	}
}

// A tool that swaps a folder for a link while the server hands the folders
// to the next turn's user never gets a file outside them chowned.
func TestOwnNeverLeavesTheFolder(t *testing.T) {
	needRoot(t)
	p, root := newPool(t, PerTurnUser)
	outside := filepath.Join(sandboxtest.Dir(t), "outside")
	if err := os.WriteFile(outside, []byte("root's"), 0o600); err != nil {
		t.Fatal(err)
	}
	conv := filepath.Join(root, "claude", "conv")
	for i := range 200 {
		if err := os.MkdirAll(filepath.Join(conv, "d", strconv.Itoa(i)), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// Planted before, and swapped in during the walk.
	if err := os.Symlink(outside, filepath.Join(conv, "link")); err != nil {
		t.Fatal(err)
	}
	sandboxtest.Swap(t, filepath.Join(conv, "d"), filepath.Dir(outside))
	b, err := p.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		_ = b.Own(conv)
	}
	defer b.Release()
	var st syscall.Stat_t
	if err := syscall.Stat(outside, &st); err != nil || st.Uid != 0 {
		t.Fatalf("a file outside the folder was handed to a turn: uid %d %v", st.Uid, err)
	}
}

func TestPerTurnUserFoldersAreTheirsAlone(t *testing.T) {
	needRoot(t)
	p, root := newPool(t, PerTurnUser)
	a, err := p.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release()
	if a.Credential().Uid == b.Credential().Uid {
		t.Fatal("two boxes share a user")
	}
	dirA := filepath.Join(root, "claude", "conv-a")
	if err := os.MkdirAll(dirA, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dirA, "transcript.jsonl"), []byte("secret of a"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := a.Own(dirA); err != nil {
		t.Fatal(err)
	}
	uidA, uidB := int(a.Credential().Uid), int(b.Credential().Uid)
	if out, err := asUser(t, uidA, "cat "+dirA+"/transcript.jsonl && echo x > "+dirA+"/new"); err != nil || !strings.Contains(out, "secret of a") {
		t.Fatalf("the owner cannot use its folder: %v %s", err, out)
	}
	for _, attack := range []string{
		"cat " + dirA + "/transcript.jsonl",
		"ls " + filepath.Join(root, "claude"),
		"echo hook > " + dirA + "/settings.json",
	} {
		if out, err := asUser(t, uidB, attack); err == nil {
			t.Errorf("another turn's user ran %q: %s", attack, out)
		}
	}
	// What a's user leaves in the shared temporary folders goes with it.
	if _, err := asUser(t, uidA, "echo left > /tmp/ovrlrd-sandbox-test-"+strconv.Itoa(uidA)); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{dirA, "/tmp/ovrlrd-sandbox-test-" + strconv.Itoa(uidA), a.TempDir()} {
		if _, err := os.Lstat(gone); !os.IsNotExist(err) {
			t.Errorf("%s survived the release: %v", gone, err)
		}
	}
}

func TestNewRefusesRootsOtherUsersCannotReach(t *testing.T) {
	needRoot(t)
	closed := t.TempDir() // 0700: not traversable by others
	if err := os.Chmod(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := New(Config{Mode: PerTurnUser, UIDs: testRange, Roots: []string{filepath.Join(closed, "work")}})
	if err == nil || !strings.Contains(err.Error(), closed) {
		t.Fatalf("New = %v, want an error naming %s", err, closed)
	}
}

// The pool's private umask once made the parents New creates 0700, so the
// first start on a fresh machine refused its own default folders.
func TestNewCreatesTraversableParents(t *testing.T) {
	needRoot(t)
	endTestUsers(t)
	parent := filepath.Join(sandboxtest.Dir(t), "fresh")
	if _, err := New(Config{Mode: PerTurnUser, UIDs: testRange, Roots: []string{filepath.Join(parent, "work")}}); err != nil {
		t.Fatalf("New with a missing parent: %v", err)
	}
	fi, err := os.Stat(parent)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o711 {
		t.Errorf("created parent has mode %o, want 711", fi.Mode().Perm())
	}
}

func TestReleaseRemovesFoldersMadeUnwritable(t *testing.T) {
	p, root := newPool(t, Shared)
	b, err := p.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "work", "conv")
	if err := b.Own(dir); err != nil {
		t.Fatal(err)
	}
	locked := filepath.Join(dir, "a", "b")
	if err := os.MkdirAll(locked, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(locked, "f"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{locked, filepath.Dir(locked)} {
		if err := os.Chmod(d, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		t.Fatalf("%s survived: %v", dir, err)
	}
}
