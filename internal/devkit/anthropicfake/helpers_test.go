package anthropicfake

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
)

// sandbox is a per-test home, config dir and working directory.
type sandbox struct {
	home, config, cwd string
}

func newSandbox(t *testing.T) sandbox {
	t.Helper()
	root := t.TempDir()
	sb := sandbox{
		home:   filepath.Join(root, "home"),
		config: filepath.Join(root, "home", ".claude"),
		cwd:    filepath.Join(root, "work"),
	}
	for _, d := range []string{sb.home, sb.config, sb.cwd} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Resolve symlinks so the cwd the CLI reports matches ours.
	if real, err := filepath.EvalSymlinks(sb.cwd); err == nil {
		sb.cwd = real
	}
	return sb
}

// env is the explicit environment the service gives the CLI: nothing is
// inherited from the test process.
func (sb sandbox) env(baseURL string, retries string) []string {
	return append(claudetest.DeskEnv(sb.home, sb.config, baseURL), "CLAUDE_CODE_MAX_RETRIES="+retries)
}

// run is one finished CLI run.
type run struct {
	lines      []map[string]any // stdout, one JSON object per line
	raw        []string         // stdout lines as received
	stderr     string
	exitCode   int
	firstLine  time.Duration // spawn to the first stdout line
	total      time.Duration // spawn to exit
	stdoutText string
}

// runOpts are the knobs of one run.
type runOpts struct {
	args    []string // after the binary
	stdin   *string  // nil: no stdin at all (empty, closed)
	retries string   // CLAUDE_CODE_MAX_RETRIES, "0" if empty
	timeout time.Duration
}

// runCLI runs the real CLI in sb against the stand-in at baseURL.
func runCLI(t *testing.T, sb sandbox, baseURL string, o runOpts) run {
	t.Helper()
	if o.retries == "" {
		o.retries = "0"
	}
	if o.timeout == 0 {
		o.timeout = 25 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, claudetest.RealCLI(t), o.args...)
	cmd.Dir = sb.cwd
	cmd.Env = sb.env(baseURL, o.retries)
	cmd.WaitDelay = 2 * time.Second
	if o.stdin != nil {
		cmd.Stdin = strings.NewReader(*o.stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start CLI: %v", err)
	}
	var r run
	var all bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
		for sc.Scan() {
			line := sc.Text()
			if r.firstLine == 0 {
				r.firstLine = time.Since(start)
			}
			all.WriteString(line + "\n")
			r.raw = append(r.raw, line)
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil {
				r.lines = append(r.lines, m)
			}
		}
	}()
	wg.Wait()
	err = cmd.Wait()
	r.total = time.Since(start)
	r.stderr = stderr.String()
	r.stdoutText = all.String()
	r.exitCode = cmd.ProcessState.ExitCode()
	if ctx.Err() != nil {
		t.Fatalf("CLI did not finish within %v (stdout %q, stderr %q)", o.timeout, r.stdoutText, r.stderr)
	}
	_ = err
	return r
}

// streamJSON runs a print-mode stream-json turn the way the service does:
// the prompt on stdin, then EOF.
func streamJSON(t *testing.T, sb sandbox, baseURL, prompt string, extra ...string) run {
	t.Helper()
	args := append([]string{"-p", "--output-format", "stream-json", "--verbose"}, extra...)
	return runCLI(t, sb, baseURL, runOpts{args: args, stdin: &prompt})
}

// find returns the lines with the given type (and subtype, if not empty).
func (r run) find(typ, subtype string) []map[string]any {
	var out []map[string]any
	for _, l := range r.lines {
		if l["type"] == typ && (subtype == "" || l["subtype"] == subtype) {
			out = append(out, l)
		}
	}
	return out
}

// result returns the final result line, failing if there is none.
func (r run) result(t *testing.T) map[string]any {
	t.Helper()
	res := r.find("result", "")
	if len(res) != 1 {
		t.Fatalf("want one result line, got %d; stdout:\n%s\nstderr:\n%s", len(res), r.stdoutText, r.stderr)
	}
	return res[0]
}

// assistantBlocks returns the content blocks of every assistant line.
func (r run) assistantBlocks() []map[string]any {
	var out []map[string]any
	for _, l := range r.find("assistant", "") {
		msg, _ := l["message"].(map[string]any)
		content, _ := msg["content"].([]any)
		for _, c := range content {
			if b, ok := c.(map[string]any); ok {
				out = append(out, b)
			}
		}
	}
	return out
}

func (r run) assistantText() string {
	var b strings.Builder
	for _, blk := range r.assistantBlocks() {
		if blk["type"] == "text" {
			s, _ := blk["text"].(string)
			b.WriteString(s)
		}
	}
	return b.String()
}
