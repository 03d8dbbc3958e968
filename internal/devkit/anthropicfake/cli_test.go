package anthropicfake

// These tests run the REAL Claude Code CLI (node_modules/.bin/claude, pinned
// by package-lock.json) against the stand-in on loopback, the way the
// service runs it. They never skip: a missing CLI is a failure telling you
// to run `make deps`.

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
)

// TestCLITextTurn: one text turn. The CLI reports system/init with a session
// id, an assistant line with the text, and a successful result with a cost;
// the transcript lands under CLAUDE_CONFIG_DIR/projects/<cwd slug>/.
func TestCLITextTurn(t *testing.T) {
	s := New(Say("Hello from the stand-in."))
	defer s.Close()
	sb := newSandbox(t)
	// A cwd with '_' and '.' shows how the CLI slugs the project directory.
	sb.cwd = filepath.Join(sb.cwd, "my_work.dir")
	if err := os.Mkdir(sb.cwd, 0o755); err != nil {
		t.Fatal(err)
	}

	r := streamJSON(t, sb, s.URL, "Say hello")
	t.Logf("timing: spawn→first stdout line %v, spawn→exit %v", r.firstLine, r.total)
	if r.exitCode != 0 {
		t.Fatalf("exit code %d, stderr %q", r.exitCode, r.stderr)
	}
	if len(r.lines) == 0 || r.lines[0]["type"] != "system" || r.lines[0]["subtype"] != "init" {
		t.Fatalf("first line is not system/init: %s", r.stdoutText)
	}
	init := r.lines[0]
	sid, _ := init["session_id"].(string)
	if sid == "" {
		t.Fatalf("system/init has no session_id: %v", init)
	}
	if init["cwd"] != sb.cwd {
		t.Errorf("init cwd = %v, want %s", init["cwd"], sb.cwd)
	}
	if got := r.assistantText(); got != "Hello from the stand-in." {
		t.Errorf("assistant text = %q", got)
	}
	res := r.result(t)
	if res["subtype"] != "success" || res["is_error"] != false {
		t.Errorf("result subtype=%v is_error=%v", res["subtype"], res["is_error"])
	}
	if res["result"] != "Hello from the stand-in." {
		t.Errorf("result text = %v", res["result"])
	}
	if res["session_id"] != sid {
		t.Errorf("result session_id %v != init %s", res["session_id"], sid)
	}
	if cost, _ := res["total_cost_usd"].(float64); cost <= 0 {
		t.Errorf("total_cost_usd = %v, want > 0", res["total_cost_usd"])
	}
	if d, ok := res["permission_denials"].([]any); !ok || len(d) != 0 {
		t.Errorf("permission_denials = %v, want []", res["permission_denials"])
	}

	reqs := s.Requests()
	if len(reqs) != 1 {
		t.Fatalf("stand-in got %d message requests, want 1", len(reqs))
	}
	q := reqs[0]
	if !q.Stream || q.Model == "" || len(q.Tools) == 0 {
		t.Errorf("request stream=%v model=%q tools=%d", q.Stream, q.Model, len(q.Tools))
	}
	if q.Prompt() != "Say hello" {
		t.Errorf("prompt seen by the stand-in = %q", q.Prompt())
	}
	if calls := s.Calls(); !slices.Contains(calls, "HEAD /") || !slices.Contains(calls, "POST /v1/messages") {
		t.Errorf("calls = %v, want HEAD / and POST /v1/messages", calls)
	}

	slug := regexp.MustCompile(`[^A-Za-z0-9]`).ReplaceAllString(sb.cwd, "-")
	transcript := filepath.Join(sb.config, "projects", slug, sid+".jsonl")
	if _, err := os.Stat(transcript); err != nil {
		found, _ := filepath.Glob(filepath.Join(sb.config, "projects", "*", "*.jsonl"))
		t.Errorf("transcript not at %s (%v); found %v", transcript, err, found)
	}
}

// TestCLIToolTurnNoApproval: the Demo script calls a listing tool that needs
// no approval; the CLI runs it and sends a second request whose last user
// message holds the tool_result, and the summary quotes it.
func TestCLIToolTurnNoApproval(t *testing.T) {
	s := New(Demo())
	defer s.Close()
	sb := newSandbox(t)
	if err := os.WriteFile(filepath.Join(sb.cwd, "hello.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	r := streamJSON(t, sb, s.URL, "What is in this folder?")
	t.Logf("timing: spawn→first stdout line %v, spawn→exit %v (tool turn)", r.firstLine, r.total)
	if r.exitCode != 0 {
		t.Fatalf("exit code %d, stderr %q", r.exitCode, r.stderr)
	}
	var toolUseID, toolName string
	for _, b := range r.assistantBlocks() {
		if b["type"] == "tool_use" {
			toolUseID, _ = b["id"].(string)
			toolName, _ = b["name"].(string)
		}
	}
	if toolUseID == "" {
		t.Fatalf("no tool_use in the assistant lines: %s", r.stdoutText)
	}
	t.Logf("demo tool: %s", toolName)
	if len(r.find("user", "")) == 0 {
		t.Errorf("no user line with the tool result: %s", r.stdoutText)
	}

	reqs := s.Requests()
	if len(reqs) != 2 {
		t.Fatalf("stand-in got %d message requests, want 2", len(reqs))
	}
	last, ok := reqs[1].LastUser()
	if !ok || len(last.ToolResults()) != 1 {
		t.Fatalf("second request's last user message holds no tool_result: %s", last.Content)
	}
	tr := last.ToolResults()[0]
	if tr.ToolUseID != toolUseID || tr.IsError || !strings.Contains(tr.ResultText(), "hello.txt") {
		t.Errorf("tool_result = %+v (text %q), want the listing for %s", tr, tr.ResultText(), toolUseID)
	}

	res := r.result(t)
	if res["is_error"] != false || res["num_turns"] != float64(2) {
		t.Errorf("result is_error=%v num_turns=%v", res["is_error"], res["num_turns"])
	}
	if d, _ := res["permission_denials"].([]any); len(d) != 0 {
		t.Errorf("the demo tool was denied: %v", d)
	}
	if text, _ := res["result"].(string); !strings.Contains(text, "hello.txt") {
		t.Errorf("summary %q does not mention the tool output", text)
	}
}

// approvalScript calls Bash (a redirect: needs approval) and Write in one
// message, then answers the tool results with text.
func approvalScript() Script {
	return ToolTurn(
		Reply{Blocks: []ReplyBlock{
			Text("I'll create two files."),
			ToolUse("Bash", map[string]string{"command": "echo hi > out.txt", "description": "Write out.txt"}),
			ToolUse("Write", map[string]string{"file_path": "w.txt", "content": "x\n"}),
		}},
		Reply{Blocks: []ReplyBlock{Text("Done as far as I was allowed.")}},
	)
}

// TestCLIPermissionDenied: without --allowedTools, Bash with a redirect and
// Write are denied; the turn still ends with a successful result whose
// permission_denials name them, and nothing is written.
func TestCLIPermissionDenied(t *testing.T) {
	s := New(approvalScript())
	defer s.Close()
	sb := newSandbox(t)

	r := streamJSON(t, sb, s.URL, "Create the files")
	if r.exitCode != 0 {
		t.Fatalf("exit code %d, stderr %q", r.exitCode, r.stderr)
	}
	ids := map[string]string{} // tool name → tool_use id
	for _, b := range r.assistantBlocks() {
		if b["type"] == "tool_use" {
			ids[b["name"].(string)] = b["id"].(string)
		}
	}
	res := r.result(t)
	if res["is_error"] != false || res["subtype"] != "success" {
		t.Errorf("result is_error=%v subtype=%v", res["is_error"], res["subtype"])
	}
	denials, _ := res["permission_denials"].([]any)
	if len(denials) != 2 {
		t.Fatalf("permission_denials = %v, want Bash and Write", res["permission_denials"])
	}
	byName := map[string]map[string]any{}
	for _, d := range denials {
		m := d.(map[string]any)
		name, _ := m["tool_name"].(string)
		byName[name] = m
		if m["tool_use_id"] != ids[name] || ids[name] == "" {
			t.Errorf("denial %s tool_use_id = %v, want %s", name, m["tool_use_id"], ids[name])
		}
		if _, ok := m["tool_input"].(map[string]any); !ok {
			t.Errorf("denial %s tool_input is not an object: %v", name, m["tool_input"])
		}
	}
	if in, _ := byName["Bash"]["tool_input"].(map[string]any); in["command"] != "echo hi > out.txt" {
		t.Errorf("Bash denial tool_input = %v", byName["Bash"]["tool_input"])
	}
	// The CLI reports Write's file_path made absolute, not as the model sent it.
	if in, _ := byName["Write"]["tool_input"].(map[string]any); in["file_path"] != filepath.Join(sb.cwd, "w.txt") {
		t.Errorf("Write denial tool_input = %v", byName["Write"]["tool_input"])
	}
	for _, f := range []string{"out.txt", "w.txt"} {
		if _, err := os.Stat(filepath.Join(sb.cwd, f)); err == nil {
			t.Errorf("%s was written although the tool was denied", f)
		}
	}
	// The model still got the denials as error tool results.
	reqs := s.Requests()
	if len(reqs) != 2 {
		t.Fatalf("stand-in got %d message requests, want 2", len(reqs))
	}
	last, _ := reqs[1].LastUser()
	for _, tr := range last.ToolResults() {
		if !tr.IsError {
			t.Errorf("denied tool result is not an error: %+v", tr)
		}
	}
}

// TestCLIAllowedTools: the same turn with --allowedTools "Bash" runs the
// Bash command (the file appears) while Write is still denied.
func TestCLIAllowedTools(t *testing.T) {
	s := New(approvalScript())
	defer s.Close()
	sb := newSandbox(t)

	r := streamJSON(t, sb, s.URL, "Create the files", "--allowedTools", "Bash")
	if r.exitCode != 0 {
		t.Fatalf("exit code %d, stderr %q", r.exitCode, r.stderr)
	}
	got, err := os.ReadFile(filepath.Join(sb.cwd, "out.txt"))
	if err != nil || string(got) != "hi\n" {
		t.Errorf("out.txt = %q, %v; want the allowed Bash command to have run", got, err)
	}
	res := r.result(t)
	denials, _ := res["permission_denials"].([]any)
	if len(denials) != 1 || denials[0].(map[string]any)["tool_name"] != "Write" {
		t.Errorf("permission_denials = %v, want only Write", res["permission_denials"])
	}
	if _, err := os.Stat(filepath.Join(sb.cwd, "w.txt")); err == nil {
		t.Error("w.txt was written although Write was not allowed")
	}
}

// TestCLIResume: a second turn with --resume sends the first turn's user and
// assistant messages; a missing session fails fast with a result line.
func TestCLIResume(t *testing.T) {
	s := New(func(r Request) Reply {
		if r.Prompt() == "first prompt" {
			return Reply{Blocks: []ReplyBlock{Text("First answer.")}}
		}
		return Reply{Blocks: []ReplyBlock{Text("Second answer.")}}
	})
	defer s.Close()
	sb := newSandbox(t)

	r1 := streamJSON(t, sb, s.URL, "first prompt")
	sid, _ := r1.result(t)["session_id"].(string)
	if r1.exitCode != 0 || sid == "" {
		t.Fatalf("first turn: exit %d, session %q, stderr %q", r1.exitCode, sid, r1.stderr)
	}

	r2 := streamJSON(t, sb, s.URL, "second prompt", "--resume", sid)
	t.Logf("timing: resumed turn spawn→first line %v, spawn→exit %v", r2.firstLine, r2.total)
	res := r2.result(t)
	if r2.exitCode != 0 || res["is_error"] != false || res["result"] != "Second answer." {
		t.Fatalf("resumed turn: exit %d, result %v, stderr %q", r2.exitCode, res, r2.stderr)
	}
	sid2, _ := res["session_id"].(string)
	t.Logf("resumed session id same as first: %v", sid2 == sid)

	reqs := s.Requests()
	if len(reqs) != 2 {
		t.Fatalf("stand-in got %d message requests, want 2", len(reqs))
	}
	var sawUser, sawAssistant bool
	for _, m := range reqs[1].Messages {
		switch {
		case m.Role == "user" && strings.Contains(m.Text(), "first prompt"):
			sawUser = true
		case m.Role == "assistant" && m.Text() == "First answer.":
			sawAssistant = true
		}
	}
	if !sawUser || !sawAssistant || reqs[1].Prompt() != "second prompt" {
		t.Errorf("resumed request lacks the first turn (user %v, assistant %v) or the new prompt (%q)",
			sawUser, sawAssistant, reqs[1].Prompt())
	}

	// Resuming a session that does not exist: exit 1, no system/init, a
	// result line with is_error, and the reason on stderr; no model call.
	missing := "00000000-0000-4000-8000-000000000000"
	r3 := streamJSON(t, sb, s.URL, "third prompt", "--resume", missing)
	t.Logf("timing: missing-session resume spawn→exit %v", r3.total)
	if r3.exitCode != 1 {
		t.Errorf("missing session: exit %d, want 1", r3.exitCode)
	}
	if !strings.Contains(r3.stderr, "No conversation found with session ID") {
		t.Errorf("missing session: stderr %q", r3.stderr)
	}
	if res3 := r3.result(t); res3["is_error"] != true {
		t.Errorf("missing session: result %v", res3)
	}
	if len(r3.find("system", "init")) != 0 {
		t.Error("missing session: got a system/init line")
	}
	if n := len(s.Requests()); n != 2 {
		t.Errorf("missing session: the stand-in got a model request (%d in all)", n)
	}
}

// TestCLIAPIError: a 500 or 529 with CLAUDE_CODE_MAX_RETRIES=0 ends the run
// at once with an is_error result carrying the status; with one retry the
// CLI first emits system/api_retry.
func TestCLIAPIError(t *testing.T) {
	for _, tc := range []struct {
		status  int
		retries string
	}{{500, "0"}, {529, "0"}, {529, "1"}} {
		t.Run(strings.Join([]string{strconv.Itoa(tc.status), "retries", tc.retries}, "_"), func(t *testing.T) {
			s := New(func(Request) Reply { return Reply{Status: tc.status} })
			defer s.Close()
			sb := newSandbox(t)
			prompt := "hi"
			r := runCLI(t, sb, s.URL, runOpts{
				args:    []string{"-p", "--output-format", "stream-json", "--verbose"},
				stdin:   &prompt,
				retries: tc.retries,
			})
			t.Logf("timing: HTTP %d with %s retries: spawn→exit %v", tc.status, tc.retries, r.total)
			if r.total > 10*time.Second {
				t.Errorf("took %v, want a quick failure", r.total)
			}
			if r.exitCode != 1 {
				t.Errorf("exit code %d, want 1", r.exitCode)
			}
			res := r.result(t)
			if res["is_error"] != true || res["api_error_status"] != float64(tc.status) {
				t.Errorf("result is_error=%v api_error_status=%v", res["is_error"], res["api_error_status"])
			}
			text, _ := res["result"].(string)
			if !strings.Contains(text, strconv.Itoa(tc.status)) {
				t.Errorf("result text %q does not name the status", text)
			}
			retries := r.find("system", "api_retry")
			wantRequests := 1
			if tc.retries == "1" {
				wantRequests = 2
				if len(retries) != 1 || retries[0]["error_status"] != float64(tc.status) {
					t.Errorf("api_retry lines = %v", retries)
				}
			} else if len(retries) != 0 {
				t.Errorf("api_retry lines with no retries: %v", retries)
			}
			if n := len(s.Requests()); n != wantRequests {
				t.Errorf("stand-in got %d requests, want %d", n, wantRequests)
			}
		})
	}
}

// TestCLITitleRun: the service's title run, `-p <prompt> --output-format
// text` from the home directory, prints the stand-in's text.
func TestCLITitleRun(t *testing.T) {
	s := New(Demo())
	defer s.Close()
	sb := newSandbox(t)
	sb.cwd = sb.home
	prompt := "Here is a conversation:\nuser: what is in this folder?\nassistant: a README\n" +
		"Give a short 3-6 word title for it. Reply with only the title."
	r := runCLI(t, sb, s.URL, runOpts{args: []string{"-p", prompt, "--output-format", "text"}})
	t.Logf("timing: title run spawn→exit %v", r.total)
	if r.exitCode != 0 {
		t.Fatalf("exit %d, stderr %q", r.exitCode, r.stderr)
	}
	if got := strings.TrimSpace(r.stdoutText); got != DemoTitle {
		t.Errorf("stdout = %q, want %q", r.stdoutText, DemoTitle)
	}
	reqs := s.Requests()
	if len(reqs) != 1 || reqs[0].Prompt() != prompt {
		t.Errorf("stand-in requests = %d, prompt %q", len(reqs), func() string {
			if len(reqs) == 0 {
				return ""
			}
			return reqs[0].Prompt()
		}())
	}
}

// TestCLIStalledStream: when the model stream stalls after a block, the CLI
// prints that block's assistant line and then nothing, even with
// API_TIMEOUT_MS set: the service must enforce its own idle deadline.
func TestCLIStalledStream(t *testing.T) {
	s := New(func(Request) Reply { return Reply{Blocks: []ReplyBlock{Text("partial text")}, Hang: true} })
	defer s.Close()
	sb := newSandbox(t)
	cmd := exec.Command(claudetest.RealCLI(t), "-p", "--output-format", "stream-json", "--verbose")
	cmd.Dir = sb.cwd
	cmd.Env = append(sb.env(s.URL, "0"), "API_TIMEOUT_MS=1000")
	cmd.Stdin = strings.NewReader("hi")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	deadline := time.After(15 * time.Second)
	for sawText := false; !sawText; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("CLI exited before the partial text")
			}
			sawText = strings.Contains(l, `"type":"assistant"`) && strings.Contains(l, "partial text")
		case <-deadline:
			t.Fatal("no assistant line with the partial text")
		}
	}
	select {
	case l, ok := <-lines:
		t.Fatalf("the CLI went on after the stall (open %v): %.300s", ok, l)
	case <-time.After(3 * time.Second):
	}
}
