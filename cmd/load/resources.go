package main

import (
	"bytes"
	"os"
	"runtime"
	"strconv"

	"github.com/ovrlrd/cloud/internal/claude"
	"github.com/ovrlrd/cloud/internal/devkit/harness"
)

// snapshot is what the process holds at one moment.
type snapshot struct {
	goroutines int   // runtime.NumGoroutine
	fds        int   // entries of /proc/self/fd (-1 where there is none)
	procs      int   // live descendants of this process (-1 where unknown)
	marked     int   // of those, how many carry claude.RunMarkerVar
	heap       int64 // heap in use: live objects plus unused space in in-use spans
	rss        int64 // VmRSS (0 where unknown)
}

func take() snapshot {
	procs := harness.Descendants()
	m, _ := harness.ReadMem()
	return snapshot{
		goroutines: runtime.NumGoroutine(),
		fds:        countFDs(),
		procs:      len(procs),
		marked:     countMarked(procs),
		heap:       harness.HeapInUse(),
		rss:        m.RSS,
	}
}

func countFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	// ReadDir's own descriptor is listed too, the same at every reading.
	return len(ents)
}

// countMarked counts the pids whose environment carries the marker every
// process of a CLI run gets.
func countMarked(pids []int) int {
	needle := []byte(claude.RunMarkerVar + "=")
	n := 0
	for _, pid := range pids {
		env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
		if err != nil {
			continue
		}
		for kv := range bytes.SplitSeq(env, []byte{0}) {
			if bytes.HasPrefix(kv, needle) {
				n++
				break
			}
		}
	}
	return n
}
