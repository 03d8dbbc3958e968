package main

import (
	"os"
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
	code := run(t.Context(), []string{"-quick", "-cli", claudetest.FakeCLI(t), "-log-level", "error", "-timeout", limit.String(),
		"-warmup", "0", "-ttfb-turns", "2", "-relay-n", "50", "-flood-n", "500", "-streams", "2", "-load-n", "50",
		"-server-n", "200"}, os.Getenv, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: a phase failed\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	lines := strings.Split(out.String(), "\n")
	for _, m := range metrics {
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
