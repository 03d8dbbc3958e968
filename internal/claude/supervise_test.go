package claude

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// portableEnv set to 1 makes this test binary supervise runs as macOS
// does, with no subreaper and no waitid: TestPortableSupervision runs the
// TestEnds tests so. init runs before TestMain calls BecomeSubreaper.
const portableEnv = "OVRLRD_TEST_PORTABLE_SUPERVISION"

func init() {
	if os.Getenv(portableEnv) == "1" {
		portableOnly = true
	}
}

// The TestEnds tests again, in a test binary that is no subreaper and
// uses only what macOS offers: what a run leaves behind is re-parented
// away from it, and must be found by the CLI's group and the run's marker.
func TestPortableSupervision(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^TestEnds", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), portableEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("with the portable supervision: %v\n%s", err, out)
	}
	for _, name := range []string{"TestEndsGroupOrphan", "TestEndsSessionLeavers", "TestEndsOnStop"} {
		if !bytes.Contains(out, []byte("--- PASS: "+name+" ")) {
			t.Errorf("%s did not pass with the portable supervision:\n%s", name, out)
		}
	}
}

// A tool's child that stays in the CLI's process group but drops the run's
// marker (env -i), and whose parent exits: only the group ties it to the
// run, and it is ended when the CLI ends.
func TestEndsGroupOrphan(t *testing.T) {
	checkSupervision(t)
	dir := t.TempDir()
	cli := filepath.Join(dir, "claude")
	script := "#!/bin/sh\n( env -i /bin/sleep 86400 </dev/null >/dev/null 2>&1 & echo $! )\n"
	if err := os.WriteFile(cli, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	o := supervisedOpts(t, "")
	o.Path, o.Mode = cli, Text
	r, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Stop(nil); _, _ = r.Wait() })
	exit, err := r.Wait()
	if err != nil {
		t.Fatalf("run: %v (stderr %q)", err, exit.Stderr)
	}
	orphan, err := strconv.Atoi(strings.TrimSpace(exit.Output))
	if err != nil || orphan <= 0 {
		t.Fatalf("the script printed %q, not a pid", exit.Output)
	}
	if procAlive(orphan) {
		_ = syscall.Kill(orphan, syscall.SIGKILL)
		t.Errorf("the group's orphan %d is alive after Wait", orphan)
	}
}

// The CLI ends by itself, leaving a child in a session of its own and a
// grandchild (own session, parent gone) behind, both with the marker: Wait
// returns once both are ended.
func TestEndsSessionLeavers(t *testing.T) {
	checkSupervision(t)
	r, err := Start(context.Background(), supervisedOpts(t, `{"mode":"orphan"}`))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Stop(nil); _, _ = r.Wait() })
	for range r.Events() {
	}
	exit, err := r.Wait()
	if err != nil {
		t.Fatalf("run: %v (stderr %q)", err, exit.Stderr)
	}
	if pids := markedAlive(t, r); len(pids) != 0 {
		killAll(pids)
		t.Errorf("processes of the run alive after Wait: %v", pids)
	}
}

// Stop ends a CLI that ignores SIGTERM and its child in a session of its
// own that ignores it too.
func TestEndsOnStop(t *testing.T) {
	checkSupervision(t)
	o := supervisedOpts(t, `{"mode":"ignore-term"}`)
	r, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Stop(nil); _, _ = r.Wait() })
	child := reportedGrandchild(t, r)
	if pids := markedAlive(t, r); !slices.Contains(pids, r.Pid()) || !slices.Contains(pids, child) {
		t.Fatalf("processes with the marker %v, want the CLI %d and its child %d", pids, r.Pid(), child)
	}
	reason := errors.New("stopped by the test")
	r.Stop(reason)
	exit, err := r.Wait()
	if err != reason {
		t.Errorf("Wait: %v, want %v", err, reason)
	}
	if pids := markedAlive(t, r); len(pids) != 0 {
		killAll(pids)
		t.Errorf("processes of the run alive after Wait: %v", pids)
	}
	if procAlive(child) {
		t.Errorf("child %d is alive after Wait", child)
	}
	if exit.Signal != syscall.SIGKILL {
		t.Errorf("signal %v, want SIGKILL", exit.Signal)
	}
}

// checkSupervision fails a TestEnds test run for the portable supervision
// that got Linux's own instead.
func checkSupervision(t *testing.T) {
	if os.Getenv(portableEnv) == "1" && !portableOnly {
		t.Fatal("the portable supervision was asked for but is not in use")
	}
}

func supervisedOpts(t *testing.T, prompt string) Options {
	o := opts(t, prompt)
	o.IdleTimeout, o.KillGrace = 30*time.Second, 300*time.Millisecond
	return o
}

// markedAlive lists the live processes whose environment carries r's
// marker, read from the process table directly, not through the scan.
func markedAlive(t *testing.T, r *Run) []int {
	t.Helper()
	var buf []byte
	var pids []int
	for _, p := range allProcs() {
		if alive(p) && bytes.Contains(environ(p.PID, &buf), append(r.marker, 0)) {
			pids = append(pids, p.PID)
		}
	}
	return pids
}

// zombieChildren counts this process's unreaped children.
func zombieChildren(t *testing.T) int {
	t.Helper()
	n := 0
	for _, p := range allProcs() {
		if p.PPID == os.Getpid() && p.State == 'Z' {
			n++
		}
	}
	return n
}

// killAll ends what a failed test found alive, so it does not outlive it.
func killAll(pids []int) {
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

func procAlive(pid int) bool {
	p, ok := procStat(pid)
	return ok && alive(p)
}

// reportedGrandchild reads events until the fake CLI names the process it
// started ("grandchild <pid>"), and returns that pid.
func reportedGrandchild(t *testing.T, r *Run) int {
	t.Helper()
	for ev := range r.Events() {
		for _, b := range ev.Blocks {
			if p, ok := strings.CutPrefix(b.Text, "grandchild "); ok {
				if pid, _ := strconv.Atoi(p); pid != 0 {
					return pid
				}
			}
		}
	}
	t.Fatal("the fake reported no grandchild")
	return 0
}

// The reaper takes only what runs leave: a child that the rest of this
// process starts stays in its session, and is left to its os.Process.
func TestReaperLeavesOtherChildren(t *testing.T) {
	cmd := exec.Command("/bin/true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitExited(cmd.Process.Pid)
	reapOrphans()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("Wait after the reaper ran: %v", err)
	}
}
