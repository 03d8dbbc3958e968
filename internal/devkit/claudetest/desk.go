package claudetest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// DeskEnv is the whole environment of a real CLI run in a test: a home and
// CLAUDE_CONFIG_DIR of its own, the model stand-in at baseURL, no retries,
// no traffic but the model's, and nothing inherited from the test process.
// A variable appended after it wins (os/exec keeps the last value).
func DeskEnv(home, configDir, baseURL string) []string {
	return []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=" + home,
		"CLAUDE_CONFIG_DIR=" + configDir,
		"ANTHROPIC_BASE_URL=" + baseURL,
		"ANTHROPIC_API_KEY=test",
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
		"DISABLE_TELEMETRY=1",
		"DISABLE_AUTOUPDATER=1",
		"DISABLE_ERROR_REPORTING=1",
		"CLAUDE_CODE_MAX_RETRIES=0",
	}
}

// DeskSession runs the real CLI once as a user's terminal would (a home of
// its own, an explicit environment, nothing inherited) against the model
// stand-in at baseURL, and returns the session id and the transcript the
// CLI wrote: what a user uploads to continue the session in the cloud.
func DeskSession(t testing.TB, baseURL, prompt string) (string, []byte) {
	t.Helper()
	home := t.TempDir()
	cwd := filepath.Join(home, "project")
	if err := os.MkdirAll(cwd, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, RealCLI(t), "-p", "--output-format", "stream-json", "--verbose")
	cmd.Dir, cmd.Stdin = cwd, strings.NewReader(prompt)
	cmd.Env = DeskEnv(home, filepath.Join(home, ".claude"), baseURL)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the desk's CLI: %v\n%s", err, out)
	}
	files, err := filepath.Glob(filepath.Join(home, ".claude", "projects", "*", "*.jsonl"))
	if err != nil || len(files) != 1 {
		t.Fatalf("the desk's transcripts: %v, %v", files, err)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(filepath.Base(files[0]), ".jsonl"), data
}
