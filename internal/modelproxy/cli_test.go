package modelproxy

// These tests run the REAL Claude Code CLI (node_modules/.bin/claude, pinned
// by package-lock.json) through the proxy to anthropicfake, with the
// explicit environment the service gives it. They never skip: a missing CLI
// is a failure telling you to run `make deps`.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/anthropicfake"
	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// TestCLIAnthropicThroughProxy: a tool turn in API-key mode. The CLI holds
// only the session token (its Bash tool prints the environment: the token,
// never the key); the stand-in sees only the operator's key; Usage() is
// what the stand-in reported over both model calls, priced as the CLI
// prices it.
func TestCLIAnthropicThroughProxy(t *testing.T) {
	fake := anthropicfake.New(anthropicfake.ToolTurn(
		anthropicfake.Reply{Blocks: []anthropicfake.ReplyBlock{
			anthropicfake.ToolUse("Bash", map[string]string{"command": "printenv", "description": "Show the environment"}),
		}},
		anthropicfake.Reply{Blocks: []anthropicfake.ReplyBlock{anthropicfake.Text("Done through the proxy.")}},
	))
	defer fake.Close()
	p := newProxy(t, Options{Provider: ovrlrd.Anthropic, Upstream: fake.URL, Credential: realKey})
	s := open(t, p)
	r := runCLI(t, []string{"ANTHROPIC_BASE_URL=" + s.BaseURL(), "ANTHROPIC_API_KEY=" + s.Token()}, "--allowedTools", "Bash")
	if r.text != "Done through the proxy." {
		t.Fatalf("result %q\n%s", r.text, r.stdout)
	}
	reqs := fake.Requests()
	if len(reqs) != 2 {
		t.Fatalf("stand-in got %d model calls, want 2", len(reqs))
	}
	last, _ := reqs[1].LastUser()
	results := last.ToolResults()
	if len(results) != 1 || !strings.Contains(results[0].ResultText(), s.Token()) {
		t.Fatalf("the tool did not print the CLI's environment: %+v", results)
	}
	for _, q := range reqs {
		if q.Header.Get("X-Api-Key") != realKey || q.Header.Get("Authorization") != "" {
			t.Errorf("stand-in saw x-api-key %q Authorization %q", q.Header.Get("X-Api-Key"), q.Header.Get("Authorization"))
		}
		if strings.Contains(string(q.Raw), realKey) {
			t.Error("the operator's key reached the model's context")
		}
	}
	assertFakeNeverSaw(t, fake, s.Token())
	assertUsage(t, s, fake, r)
}

// TestCLIOAuthThroughProxy: the same in OAuth mode: the CLI sends the
// session token as its bearer token, the stand-in sees the operator's.
func TestCLIOAuthThroughProxy(t *testing.T) {
	fake := anthropicfake.New(anthropicfake.Say("OAuth through the proxy."))
	defer fake.Close()
	p := newProxy(t, Options{Provider: ovrlrd.OAuth, Upstream: fake.URL, Credential: realOAuth})
	s := open(t, p)
	r := runCLI(t, []string{"ANTHROPIC_BASE_URL=" + s.BaseURL(), "CLAUDE_CODE_OAUTH_TOKEN=" + s.Token()})
	if r.text != "OAuth through the proxy." {
		t.Fatalf("result %q\n%s", r.text, r.stdout)
	}
	reqs := fake.Requests()
	if len(reqs) == 0 {
		t.Fatal("no model call reached the stand-in")
	}
	for _, q := range reqs {
		if q.Header.Get("Authorization") != "Bearer "+realOAuth || q.Header.Get("X-Api-Key") != "" {
			t.Errorf("stand-in saw Authorization %q x-api-key %q", q.Header.Get("Authorization"), q.Header.Get("X-Api-Key"))
		}
		if !strings.Contains(q.Header.Get("Anthropic-Beta"), "oauth-2025-04-20") {
			t.Errorf("the CLI's OAuth beta flag was lost: %q", q.Header.Get("Anthropic-Beta"))
		}
	}
	assertFakeNeverSaw(t, fake, s.Token())
	assertUsage(t, s, fake, r)
}

// TestCLIBedrockThroughProxy: in Bedrock mode the CLI sends unsigned
// requests (CLAUDE_CODE_SKIP_BEDROCK_AUTH) to the proxy, which signs them;
// the Bedrock stand-in verifies every signature, the turn completes with
// the scripted text, and the eventstream usage is counted.
func TestCLIBedrockThroughProxy(t *testing.T) {
	fake := anthropicfake.NewBedrock(anthropicfake.Say("Bedrock through the proxy."))
	defer fake.Close()
	p := newProxy(t, Options{Provider: ovrlrd.Bedrock, Upstream: fake.URL, Region: anthropicfake.BedrockRegion, AWSCredentials: testCreds()})
	s := open(t, p)
	r := runCLI(t, []string{
		"CLAUDE_CODE_USE_BEDROCK=1",
		"ANTHROPIC_BEDROCK_BASE_URL=" + s.BaseURL(),
		"CLAUDE_CODE_SKIP_BEDROCK_AUTH=1",
		"AWS_REGION=" + anthropicfake.BedrockRegion,
	})
	if r.text != "Bedrock through the proxy." {
		t.Fatalf("result %q\n%s", r.text, r.stdout)
	}
	calls := fake.Calls()
	if !slices.Contains(calls, "GET /inference-profiles") {
		t.Errorf("calls = %v, want the inference profile lookup (signed and answered)", calls)
	}
	reqs := fake.Requests()
	if len(reqs) == 0 || !reqs[0].Stream || !strings.Contains(reqs[0].Model, "anthropic.claude-") {
		t.Fatalf("stand-in requests = %+v", reqs)
	}
	assertFakeNeverSaw(t, fake, s.Token())
	assertUsage(t, s, fake, r)
}

func assertFakeNeverSaw(t *testing.T, fake *anthropicfake.Server, token string) {
	t.Helper()
	for _, c := range fake.Calls() {
		if strings.Contains(c, token) || strings.Contains(c, "/t/") {
			t.Errorf("stand-in call %q carries the token prefix", c)
		}
	}
	for _, q := range fake.Requests() {
		for k, vs := range q.Header {
			if strings.Contains(strings.Join(vs, " "), token) {
				t.Errorf("stand-in header %s carries the session token", k)
			}
		}
	}
}

// assertUsage: the proxy's count equals what the stand-in reported, and
// its price equals the CLI's own total_cost_usd for the same tokens.
func assertUsage(t *testing.T, s *Session, fake *anthropicfake.Server, r cliRun) {
	t.Helper()
	got, want := s.Usage(), fake.Usage()
	if got.InputTokens <= 0 || got.OutputTokens <= 0 || got.CostUSD <= 0 {
		t.Fatalf("Usage() = %+v, want every field > 0", got)
	}
	if got.InputTokens != int64(want.InputTokens) || got.OutputTokens != int64(want.OutputTokens) {
		t.Errorf("Usage() = %d in / %d out, stand-in reported %d / %d", got.InputTokens, got.OutputTokens, want.InputTokens, want.OutputTokens)
	}
	if math.Abs(got.CostUSD-r.cost) > 1e-9 {
		t.Errorf("cost %.9f, the CLI computed %.9f for the same usage", got.CostUSD, r.cost)
	}
}

// cliRun is one finished print-mode run.
type cliRun struct {
	stdout string
	text   string  // the result line's result
	cost   float64 // the result line's total_cost_usd
}

// runCLI runs one stream-json turn ("Say hello" on stdin) in a fresh HOME
// with an explicit environment: nothing is inherited from the test.
func runCLI(t *testing.T, provider []string, args ...string) cliRun {
	t.Helper()
	home := t.TempDir()
	work := filepath.Join(home, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	env := append([]string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=" + home,
		"CLAUDE_CONFIG_DIR=" + filepath.Join(home, ".claude"),
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
		"DISABLE_TELEMETRY=1",
		"DISABLE_AUTOUPDATER=1",
		"DISABLE_ERROR_REPORTING=1",
		"CLAUDE_CODE_MAX_RETRIES=0",
	}, provider...)
	if os.Geteuid() == 0 {
		env = append(env, "IS_SANDBOX=1") // the CLI refuses some modes as root without it
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, claudetest.RealCLI(t), append([]string{"-p", "--output-format", "stream-json", "--verbose"}, args...)...)
	cmd.Dir, cmd.Env, cmd.WaitDelay = work, env, 2*time.Second
	cmd.Stdin = strings.NewReader("Say hello")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("CLI did not finish: stdout %s stderr %s", stdout.String(), stderr.String())
	}
	r := cliRun{stdout: stdout.String()}
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var line struct {
			Type    string  `json:"type"`
			Result  string  `json:"result"`
			IsError bool    `json:"is_error"`
			Cost    float64 `json:"total_cost_usd"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Type == "result" {
			if line.IsError {
				t.Fatalf("the CLI's turn failed: %s\nstderr %s", r.stdout, stderr.String())
			}
			r.text, r.cost = line.Result, line.Cost
		}
	}
	if err != nil {
		t.Fatalf("CLI: %v\nstdout %s\nstderr %s", err, r.stdout, stderr.String())
	}
	return r
}
