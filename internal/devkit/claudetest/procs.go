package claudetest

import (
	"bytes"
	"os"
	"strconv"
	"testing"

	"github.com/ovrlrd/cloud/internal/procfs"
)

// AssertNoRunProcesses checks that nothing a turn of this test binary
// started is still alive: every process a run starts carries the run marker
// (claude.RunMarkerVar, passed in as marker, since the claude package's own
// tests use this one) in its environment, and descends from this process
// (orphans are re-parented to it, the subreaper). Other test binaries' runs
// are theirs.
func AssertNoRunProcesses(t testing.TB, marker string) {
	t.Helper()
	var buf []byte
	for _, pid := range procfs.Pids() {
		env, ok := procfs.ReadFile("/proc/"+strconv.Itoa(pid)+"/environ", &buf)
		if !ok || !bytes.Contains(env, []byte(marker+"=")) || !descendsFromUs(pid) {
			continue
		}
		if s, ok := procfs.ReadStat(pid, &buf); ok && s.State != 'Z' {
			t.Errorf("process %d of a turn is still running (state %q)", pid, s.State)
		}
	}
}

func descendsFromUs(pid int) bool {
	me := os.Getpid()
	var buf []byte
	for i := 0; i < 64 && pid > 1; i++ {
		s, _ := procfs.ReadStat(pid, &buf)
		if s.PPID == me {
			return true
		}
		pid = s.PPID
	}
	return false
}
