package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/claude/claudetest"
)

// The bench keeps compiling and running: a tiny run through the whole
// service prints every row, and no phase fails. Its numbers are not checked.
func TestQuickBenchPrintsEveryRow(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var out, errOut strings.Builder
	code := run(ctx, []string{"-quick", "-cli", claudetest.FakeCLI(t), "-log-level", "error", "-timeout", "90s",
		"-warmup", "0", "-ttfb-turns", "2", "-relay-n", "50", "-flood-n", "500", "-streams", "2", "-load-n", "50",
		"-server-n", "200"}, os.Getenv, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
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
