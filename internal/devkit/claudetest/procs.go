package claudetest

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// AssertNoRunProcesses checks that nothing a turn of this test binary
// started is still alive: every process a run starts carries the run marker
// (claude.RunMarkerVar, passed in as marker, since the claude package's own
// tests use this one) in its environment, and descends from this process
// (orphans are re-parented to it, the subreaper). Other test binaries' runs
// are theirs.
func AssertNoRunProcesses(t testing.TB, marker string) {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(env, []byte(marker+"=")) || !descendsFromUs(pid) {
			continue
		}
		if state, _ := procStat(pid); state != "Z" {
			t.Errorf("process %d of a turn is still running (state %s)", pid, state)
		}
	}
}

func descendsFromUs(pid int) bool {
	me := os.Getpid()
	for i := 0; i < 64 && pid > 1; i++ {
		_, ppid := procStat(pid)
		if ppid == me {
			return true
		}
		pid = ppid
	}
	return false
}

// procStat returns a process's state and parent from /proc/<pid>/stat.
func procStat(pid int) (string, int) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return "", 0
	}
	// The command name may hold spaces; the fields after its ')' do not.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 2 {
		return "", 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return f[0], ppid
}
