package transcript

// These tests run the REAL Claude Code CLI (claudetest.RealCLI, through
// desk_test.go) against the Anthropic stand-in: the transcripts they read
// are ones the pinned CLI wrote, and --resume is checked by the CLI itself.

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/anthropicfake"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// deskModel answers the desk's two turns (a text one, then a Bash call of
// `ls`, which runs without approval) and the cloud's resumed one.
func deskModel(r anthropicfake.Request) anthropicfake.Reply {
	say := func(s string) anthropicfake.Reply {
		return anthropicfake.Reply{Blocks: []anthropicfake.ReplyBlock{anthropicfake.Text(s)}}
	}
	last, _ := r.LastUser()
	switch {
	case len(last.ToolResults()) > 0:
		return say("The folder holds hello.txt.")
	case r.Prompt() == "What is here?":
		return anthropicfake.Reply{Blocks: []anthropicfake.ReplyBlock{
			anthropicfake.Text("Let me look."),
			anthropicfake.ToolUse("Bash", map[string]string{"command": "ls", "description": "List files"}),
		}}
	case r.Prompt() == "Say hello":
		return say("Hello from the desk.")
	}
	return say("Continuing in the cloud.")
}

// TestRealCLI: a transcript the pinned CLI wrote at a desk parses to its
// messages, and resumes in another working directory on another machine
// once placed, as it is, under that directory's slug.
func TestRealCLI(t *testing.T) {
	s := anthropicfake.New(deskModel)
	defer s.Close()
	root := t.TempDir()
	// The desk's folder has what Slug replaces, characters outside the
	// BMP, and a path long enough for the CLI to cut and hash its slug.
	d := newDesk(t, root, filepath.Join("desk", "my_work.dir", "ünï 😀", strings.Repeat("x", 80), strings.Repeat("y", 80)))
	if err := os.WriteFile(filepath.Join(d.cwd, "hello.txt"), []byte("hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now().Truncate(time.Millisecond)
	first := d.run(t, s.URL, "Say hello")
	id, _ := first.result(t)["session_id"].(string)
	if second := d.run(t, s.URL, "What is here?", "--resume", id); first.exit != 0 || second.exit != 0 {
		t.Fatalf("desk turns: exit %d and %d, stderr %q %q", first.exit, second.exit, first.stderr, second.stderr)
	}
	end := time.Now()

	// Slug names the folder the CLI chose.
	files, _ := filepath.Glob(filepath.Join(d.config, "projects", "*", "*.jsonl"))
	if want, _ := Path(d.config, d.cwd, id); !slices.Equal(files, []string{want}) {
		t.Fatalf("the CLI wrote %q; Path gives %q", files, want)
	}
	file, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}

	sess, err := Parse(bytes.NewReader(file), id, 0)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, file)
	}
	type msg struct {
		Role    ovrlrd.Role
		Content string
	}
	want := []msg{
		{ovrlrd.RoleUser, "Say hello"},
		{ovrlrd.RoleAssistant, "Hello from the desk."},
		{ovrlrd.RoleUser, "What is here?"},
		{ovrlrd.RoleAssistant, "Let me look."},
		{ovrlrd.RoleAssistant, "[Tool Use: Bash]\n" + `{"command":"ls","description":"List files"}`},
		{ovrlrd.RoleUser, "[Tool Result]\nhello.txt"},
		{ovrlrd.RoleAssistant, "The folder holds hello.txt."},
	}
	var got []msg
	for i, m := range sess.Messages {
		got = append(got, msg{m.Role, m.Content})
		// The desk's own times, in order.
		if m.CreatedAt.Before(start) || m.CreatedAt.After(end) || (i > 0 && m.CreatedAt.Before(sess.Messages[i-1].CreatedAt)) {
			t.Errorf("message %d at %v, outside the turns (%v to %v) or before the one above", i, m.CreatedAt, start, end)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("messages:\n%q\nwant\n%q", got, want)
	}
	if sess.ID != id || sess.Cwd != d.cwd || sess.Title != "" {
		t.Errorf("session %q, cwd %q, title %q", sess.ID, sess.Cwd, sess.Title)
	}

	// The cloud: a fresh config, another working directory, and the
	// desk's folder gone.
	c := newDesk(t, filepath.Join(root, "cloud"), "conversation")
	if err := os.RemoveAll(filepath.Join(root, "desk")); err != nil {
		t.Fatal(err)
	}
	place := func(path string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, file, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// Under the desk's slug the CLI does not find it.
	stale := filepath.Join(c.config, "projects", Slug(d.cwd), id+".jsonl")
	place(stale)
	if r := c.run(t, s.URL, "next", "--resume", id); r.exit != 1 || !strings.Contains(r.stderr, "No conversation found") {
		t.Errorf("resumed from the desk's slug: exit %d, stderr %q", r.exit, r.stderr)
	}
	os.RemoveAll(filepath.Dir(stale))

	// Under the cloud's, unchanged, it resumes with the whole context.
	requests := len(s.Requests())
	at, _ := Path(c.config, c.cwd, id)
	place(at)
	r := c.run(t, s.URL, "next", "--resume", id)
	res := r.result(t)
	if r.exit != 0 || res["result"] != "Continuing in the cloud." || res["session_id"] != id || r.init()["cwd"] != c.cwd {
		t.Fatalf("resumed in the cloud: exit %d, result %v, init %v, stderr %q", r.exit, res, r.init(), r.stderr)
	}
	q := s.Requests()[requests]
	var sent []string
	for _, m := range q.Messages {
		if m.Role == "user" || m.Role == "assistant" {
			sent = append(sent, m.Role+": "+renderSent(t, m))
		}
	}
	wantSent := []string{
		"user: Say hello", "assistant: Hello from the desk.", "user: What is here?",
		`assistant: Let me look.|tool_use Bash {"command":"ls","description":"List files"}`,
		"user: tool_result hello.txt", "assistant: The folder holds hello.txt.", "user: next",
	}
	if !slices.Equal(sent, wantSent) {
		t.Errorf("the first request of the resumed turn sent:\n%q\nwant\n%q", sent, wantSent)
	}
	// The entries' cwd (the desk's) reaches neither the model nor the run.
	if bytes.Contains(q.Raw, []byte(d.cwd)) {
		t.Error("the request names the desk's folder")
	}

	// The CLI appends to the placed file, its new entries with the cloud's
	// cwd, and the file still parses.
	grown, err := os.ReadFile(at)
	if err != nil || !bytes.HasPrefix(grown, file) || !bytes.Contains(grown[len(file):], []byte(`"cwd":`+quote(c.cwd))) {
		t.Fatalf("the resumed turn did not append to the placed file with its cwd (%v):\n%s", err, grown[len(file):])
	}
	if again, err := Parse(bytes.NewReader(grown), id, 0); err != nil || len(again.Messages) != len(want)+2 {
		t.Errorf("the grown transcript: %v", err)
	}
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

// renderSent is a request message as text, without the CLI's reminders:
// its text blocks, tool calls and tool results joined by "|".
func renderSent(t *testing.T, m anthropicfake.Message) string {
	var s string
	if json.Unmarshal(m.Content, &s) == nil {
		return s
	}
	var blocks []struct {
		Type    string
		Text    string
		Name    string
		Input   json.RawMessage
		Content json.RawMessage
	}
	if err := json.Unmarshal(m.Content, &blocks); err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, b := range blocks {
		switch {
		case b.Type == "text" && !strings.HasPrefix(b.Text, "<system-reminder>"):
			parts = append(parts, b.Text)
		case b.Type == "tool_use":
			parts = append(parts, "tool_use "+b.Name+" "+string(b.Input))
		case b.Type == "tool_result":
			parts = append(parts, "tool_result "+anthropicfake.Block{Content: b.Content}.ResultText())
		}
	}
	return strings.Join(parts, "|")
}

// TestRealCLIRunState: of the entries that carry how the CLI ran, a mode
// is acted on when resumed (so Parse refuses all but "normal"), while a
// permission mode is not (so Parse accepts it: desks switch modes).
func TestRealCLIRunState(t *testing.T) {
	s := anthropicfake.New(anthropicfake.Commands())
	defer s.Close()
	root := t.TempDir()
	d := newDesk(t, root, "desk")
	id, _ := d.run(t, s.URL, "hello").result(t)["session_id"].(string)
	file, err := os.ReadFile(d.transcriptPath(id))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Count(string(file), "\n")

	for _, tc := range []struct {
		name, prompt string
		edit         func(string) string
		refused      string // Parse's message, "" if accepted
		check        func(t *testing.T, c desk, r cliRun)
	}{{
		name:   "coordinator mode",
		prompt: anthropicfake.CommandPrefix + "pwd",
		edit: func(f string) string {
			return f + line(fields{"type": "mode", "mode": "coordinator", "sessionId": id}) + "\n"
		},
		refused: "sets a mode the cloud does not run",
		check: func(t *testing.T, c desk, r cliRun) {
			res := s.ToolResults()
			if !strings.Contains(r.stderr, "coordinator mode") || !strings.Contains(res[len(res)-1], "No such tool available: Bash") {
				t.Errorf("the CLI did not take the mode: stderr %q, tool result %q", r.stderr, res[len(res)-1])
			}
		},
	}, {
		name:   "bypass permissions",
		prompt: anthropicfake.CommandPrefix + "echo hi > out.txt",
		edit: func(f string) string {
			f = strings.ReplaceAll(f, `"permissionMode":"default"`, `"permissionMode":"bypassPermissions"`)
			return f + line(fields{"type": "permission-mode", "permissionMode": "bypassPermissions", "sessionId": id}) + "\n"
		},
		check: func(t *testing.T, c desk, r cliRun) {
			denials, _ := r.result(t)["permission_denials"].([]any)
			if _, err := os.Stat(filepath.Join(c.cwd, "out.txt")); err == nil || len(denials) != 1 || r.init()["permissionMode"] != "default" {
				t.Errorf("the CLI took the permission mode: denials %v, init %v", denials, r.init())
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			edited := []byte(tc.edit(string(file)))
			_, err := Parse(bytes.NewReader(edited), id, 0)
			if want := "Line " + strconv.Itoa(lines+1) + " of the transcript " + tc.refused + "."; tc.refused != "" && ovrlrd.ErrorMessage(err) != want {
				t.Errorf("Parse: %v, want %q", err, want)
			} else if tc.refused == "" && err != nil {
				t.Errorf("Parse: %v", err)
			}
			c := newDesk(t, filepath.Join(root, strings.ReplaceAll(tc.name, " ", "-")), "conversation")
			at, _ := Path(c.config, c.cwd, id)
			if err := os.MkdirAll(filepath.Dir(at), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(at, edited, 0o600); err != nil {
				t.Fatal(err)
			}
			r := c.run(t, s.URL, tc.prompt, "--resume", id)
			if r.exit != 0 {
				t.Fatalf("exit %d, stderr %q", r.exit, r.stderr)
			}
			tc.check(t, c, r)
		})
	}
}
