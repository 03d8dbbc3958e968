package transcript

// A desk runs the real CLI the way anthropicfake's tests do: an explicit
// environment, nothing inherited, a temporary home.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
)

// desk is one machine's view for the CLI: a home, a CLAUDE_CONFIG_DIR and
// a working directory.
type desk struct {
	home, config, cwd string
}

// newDesk makes a desk under root, working in the folder work below it.
func newDesk(t *testing.T, root, work string) desk {
	t.Helper()
	d := desk{home: filepath.Join(root, "home"), cwd: filepath.Join(root, work)}
	d.config = filepath.Join(d.home, ".claude")
	for _, dir := range []string{d.config, d.cwd} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The CLI reports and slugs the real path; the temporary directory
	// may sit behind a link.
	real, err := filepath.EvalSymlinks(d.cwd)
	if err != nil {
		t.Fatal(err)
	}
	d.cwd = real
	return d
}

// transcriptPath is where the CLI keeps session id's transcript for d.
func (d desk) transcriptPath(id string) string {
	return filepath.Join(d.config, "projects", Slug(d.cwd), id+".jsonl")
}

// cliRun is one finished CLI run.
type cliRun struct {
	lines  []map[string]any
	stdout string
	stderr string
	exit   int
}

// run runs the real CLI in d against the stand-in at baseURL with an
// explicit environment (nothing inherited), the prompt on stdin.
func (d desk) run(t *testing.T, baseURL, prompt string, args ...string) cliRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args = append([]string{"-p", "--output-format", "stream-json", "--verbose"}, args...)
	cmd := exec.CommandContext(ctx, claudetest.RealCLI(t), args...)
	cmd.Dir = d.cwd
	cmd.Env = claudetest.DeskEnv(d.home, d.config, baseURL)
	cmd.WaitDelay = 2 * time.Second
	cmd.Stdin = strings.NewReader(prompt)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("the CLI did not finish: stdout %q, stderr %q", stdout.String(), stderr.String())
	}
	r := cliRun{stdout: stdout.String(), stderr: stderr.String(), exit: cmd.ProcessState.ExitCode()}
	if err != nil && r.exit < 0 {
		t.Fatalf("CLI: %v", err)
	}
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			r.lines = append(r.lines, m)
		}
	}
	return r
}

// result is the run's result line, failing the test without one.
func (r cliRun) result(t *testing.T) map[string]any {
	t.Helper()
	for _, l := range r.lines {
		if l["type"] == "result" {
			return l
		}
	}
	t.Fatalf("no result line; stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	return nil
}

// init is the run's system/init line, or nil.
func (r cliRun) init() map[string]any {
	for _, l := range r.lines {
		if l["type"] == "system" && l["subtype"] == "init" {
			return l
		}
	}
	return nil
}
