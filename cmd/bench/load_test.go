package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
)

// A tiny run through the whole service: every turn completes, no request
// fails other than with a 429, and goroutines, descriptors, the heap and
// processes come back to the baseline. The timings are not checked.
func TestQuickLoadLeavesNothingBehind(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var out, errOut strings.Builder
	code := run(ctx, []string{"-load", "-quick", "-cli", claudetest.FakeCLI(t), "-log-level", "error", "-timeout", "90s",
		"-users", "2", "-turns", "4", "-rounds", "2", "-events", "50", "-rate", "500",
		"-workers", "4", "-duration", "2s", "-refresh-every", "500ms"}, &out, &errOut)
	report := out.String()
	t.Log("\n" + report)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, report, errOut.String())
	}
	for _, want := range []string{"8 of 8", "Result: PASS", "POST /auth/refresh", "goroutines", "open file descriptors",
		"heap in use", mProcessesAfter + "  0"} {
		if !strings.Contains(report, want) {
			t.Errorf("no %q in:\n%s", want, report)
		}
	}
	if strings.Contains(report, markError) {
		t.Errorf("a check failed:\n%s", report)
	}
}
