package procfs

import (
	"os"
	"os/exec"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// A child reads as this process's, running, then as a zombie once it has
// exited and nobody has reaped it; the table lists it all along.
func TestReadStatFollowsAChild(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	pid := cmd.Process.Pid
	var buf []byte
	s, ok := ReadStat(pid, &buf)
	if !ok || s.PID != pid || s.PPID != os.Getpid() || s.State == 'Z' {
		t.Fatalf("running child: %+v, %v", s, ok)
	}
	if !slices.Contains(Pids(), pid) {
		t.Errorf("Pids has no %d", pid)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// Wait for the exit without reaping: the zombie stays in the table.
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		t.Fatal(err)
	}
	if z, ok := ReadStat(pid, &buf); !ok || z.State != 'Z' || z.PPID != s.PPID {
		t.Errorf("exited child: %+v, %v; want a zombie of %d", z, ok, s.PPID)
	}
}

// A buffer too small for the file grows, and keeps its size for the next
// read.
func TestReadFileGrowsTheBuffer(t *testing.T) {
	buf := make([]byte, 8)
	b, ok := ReadFile("/proc/self/status", &buf)
	if !ok || len(b) <= 8 || len(buf) < len(b) {
		t.Fatalf("ReadFile read %d bytes into a buffer of %d (ok %v)", len(b), len(buf), ok)
	}
	if _, ok := ReadFile("/proc/self/no-such-file", &buf); ok {
		t.Error("a missing file was read")
	}
}
