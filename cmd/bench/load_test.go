package main

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
)

// A quick run through the whole service: every turn completes, no request
// fails other than with a 429, and goroutines, descriptors, the heap and
// processes come back to the baseline. The timings are not checked.
func TestQuickLoadLeavesNothingBehind(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var out, errOut strings.Builder
	args := []string{"-load", "-quick", "-cli", claudetest.FakeCLI(t), "-log-level", "error", "-timeout", "90s"}
	code := run(ctx, args, &out, &errOut)
	report := out.String()
	t.Log("\n" + report)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, report, errOut.String())
	}
	o, _ := parseFlags(args, io.Discard)
	turns := fmt.Sprintf("%d of %d", o.turns*o.rounds, o.turns*o.rounds)
	if resumed := regexp.MustCompile(fmt.Sprintf(`POST /chat/\{id\}/stream +%d ok`, o.turns*(o.rounds-1))); !resumed.MatchString(report) {
		t.Errorf("not every later round resumed its conversation:\n%s", report)
	}
	for _, want := range []string{turns, "Result: PASS", "POST /auth/refresh", "goroutines", "open file descriptors",
		"heap in use", mProcessesAfter + "  0"} {
		if !strings.Contains(report, want) {
			t.Errorf("no %q in:\n%s", want, report)
		}
	}
	if strings.Contains(report, markError) {
		t.Errorf("a check failed:\n%s", report)
	}
}
