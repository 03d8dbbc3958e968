package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
)

// The bench keeps compiling and running: a tiny run through the whole
// service prints every row, and no phase fails. Its numbers are not
// checked: a row over its target says MISS, as it may on a busy machine.
func TestQuickBenchPrintsEveryRow(t *testing.T) {
	// The bench builds the bootstraps: on a busy machine with a cold build
	// cache that takes minutes. Its run, builds included, ends at the
	// test's own deadline, never before.
	limit := 24 * time.Hour
	if dl, ok := t.Deadline(); ok {
		limit = time.Until(dl)
	}
	var out, errOut strings.Builder
	code := run(t.Context(), []string{"-quick", "-cli", claudetest.FakeCLI(t), "-log-level", "error", "-timeout", limit.String()}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: a phase failed\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	lines := strings.Split(out.String(), "\n")
	var rows []string
	for _, p := range (&bench{}).phases() {
		rows = append(rows, p.rows...)
	}
	// The rows compared between runs, by the names they have always had.
	rows = append(rows, mProcessesAfter)
	for _, m := range []string{"relay overhead p50", "relay overhead p99", "flat-out throughput", "allocs/event, server+client",
		"time to first byte p50", "time to first byte p50 minus DynamoDB", "time to first chunk p50", "RSS idle",
		"RSS peak, concurrent streams", "cancel to terminal event", "processes left after the run",
		"cold start init p50, auth", "cold start init p50, chat", "cold start init p50, stream",
		"arm64 binary size, auth", "arm64 binary size, chat", "arm64 binary size, stream",
		// Issue 16's: the database's share of the first byte, the REST reads,
		// each function's own process.
		"DynamoDB in flight before first byte p50", "DynamoDB round trips before first byte", "fake CLI spawn to first line p50",
		"GET /chat p50", "GET /chat DynamoDB round trips", "GET /chat/{id} p50", "GET /chat/{id} DynamoDB round trips",
		"GET /chat requests/s, 1 at a time", "GET /chat requests/s, 16 at once",
		"RSS idle, auth bootstrap", "RSS idle, chat bootstrap", "RSS idle, stream bootstrap",
		"RSS, 2000-event turn, stream bootstrap", "RSS, 2000-event turn, stream + CLI",
		// Issue 19's: the event log's writes, and a reattached watcher's delay.
		"event log writes per turn", "event log writes per second of turn",
		"event to reattached watcher p50", "event to reattached watcher p99",
		// Live tool approval's: an answer's way to the waiting CLI.
		"approval answer to CLI p50", "approval answer to CLI p99"} {
		if !slices.Contains(rows, m) {
			t.Errorf("no row %q", m)
		}
	}
	for _, m := range rows {
		found := false
		for _, l := range lines {
			if strings.HasPrefix(l, m+"  ") {
				found = true
				if strings.Contains(l, markError) || strings.Contains(l, "not measured") {
					t.Errorf("row %q: %s", m, l)
				}
			}
		}
		if !found {
			t.Errorf("no row %q in:\n%s", m, out.String())
		}
	}
}
