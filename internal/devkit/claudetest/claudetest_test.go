package claudetest

import (
	"os/exec"
	"strings"
	"testing"
)

func TestFakeCLI(t *testing.T) {
	path := FakeCLI(t)
	if FakeCLI(t) != path {
		t.Error("built twice")
	}
	cmd := exec.Command(path, "-p", "--output-format", "stream-json", "--verbose")
	cmd.Stdin = strings.NewReader(Script("crash", "n", 1))
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("crash mode: %v", err)
	}
	// n is honoured even below the mode's default of 3.
	if n := strings.Count(string(out), "\n"); n != 2 {
		t.Errorf("%d lines, want init and 1 text:\n%s", n, out)
	}
	if got := Script("rate", "n", 10, "rate", 1000.5, "text", `a"b`); got != `{"mode":"rate","n":10,"rate":1000.5,"text":"a\"b"}` {
		t.Errorf("Script = %s", got)
	}
}
