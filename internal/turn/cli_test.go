package turn_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/anthropicfake"
	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/sse"
	"github.com/ovrlrd/cloud/internal/turn"
)

// The tests in this file run the real Claude Code CLI against a loopback
// stand-in of the Anthropic Messages API.

func TestTextTurn(t *testing.T) {
	// The title must not lose its race with the turn on a busy machine.
	t.Cleanup(turn.SetTitleTimes(time.Minute, time.Minute))
	srv, env := anthropic(t, anthropicfake.Say("Hello from the stand-in."))
	r := newRig(t, claudetest.RealCLI(t), env)
	j := r.begin("", "Hi there")
	rec, o := r.run(j)

	types := rec.types()
	if types[0] != sse.Chunk || types[len(types)-1] != sse.Complete || rec.pings == 0 {
		t.Fatalf("events %v (pings %d)", types, rec.pings)
	}
	done := rec.last()
	if done.ConversationID != j.ConversationID || done.Title != "Greeting the assistant" {
		t.Fatalf("complete %+v", done)
	}
	// Saved BEFORE the terminal event: the run returned after sending it,
	// and everything is in the table.
	msgs := r.messages(j.ConversationID)
	if len(msgs) != 2 || msgs[0].Role != ovrlrd.RoleUser || msgs[0].Content != "Hi there" ||
		msgs[1].Role != ovrlrd.RoleAssistant || msgs[1].Content != "Hello from the stand-in." {
		t.Fatalf("messages %+v", msgs)
	}
	c := r.conversation(j.ConversationID)
	if c.ClaudeSessionID == nil || *c.ClaudeSessionID != o.SessionID || c.Title == nil || *c.Title != done.Title {
		t.Fatalf("conversation %+v", c)
	}
	// The title run's prompt is the user's message: it gets no tools.
	for _, req := range srv.Requests() {
		if strings.Contains(req.Prompt(), "Reply with only the title.") && len(req.Tools) != 0 {
			t.Fatalf("the title run was offered tools: %v", req.Tools)
		}
	}
	r.noFolders()
}

func TestToolTurnAndResume(t *testing.T) {
	srv, env := anthropic(t, anthropicfake.ToolTurn(
		anthropicfake.Reply{Blocks: []anthropicfake.ReplyBlock{anthropicfake.Text("Let me look."), anthropicfake.ToolUse("Bash", map[string]any{"command": "ls -a", "description": "List files"})}},
		anthropicfake.Reply{Blocks: []anthropicfake.ReplyBlock{anthropicfake.Text("Nothing much here.")}},
	))
	r := newRig(t, claudetest.RealCLI(t), env)
	j := r.begin("", "What is here?")
	rec, _ := r.run(j)
	want := []string{sse.Chunk, sse.SegmentEnd, sse.ToolStart, sse.ToolEnd, sse.Chunk, sse.Complete}
	if got := rec.types(); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	if msgs := r.messages(j.ConversationID); len(msgs) != 3 || msgs[1].Content != "Let me look." || msgs[2].Content != "Nothing much here." {
		t.Fatalf("messages %+v", msgs)
	}

	// The second turn resumes the CLI session: the model sees turn one.
	before := len(turnRequests(srv))
	j2 := r.begin(j.ConversationID, "And now?")
	if c := r.conversation(j.ConversationID); c.ClaudeSessionID == nil {
		t.Fatal("no session to resume")
	}
	r.run(j2)
	reqs := turnRequests(srv)[before:]
	var seen []string
	for _, m := range reqs[0].Messages {
		seen = append(seen, m.Text())
	}
	all := strings.Join(seen, "\n")
	if !strings.Contains(all, "What is here?") || !strings.Contains(all, "Nothing much here.") || !strings.Contains(all, "And now?") {
		t.Fatalf("the resumed turn did not carry turn one: %q", all)
	}
}

// A tool that needs approval is denied; the app asks the user; the retry
// with allowedTools runs it.
func TestDeniedToolThenApproval(t *testing.T) {
	write := anthropicfake.ToolUse("Write", map[string]any{"file_path": "notes.txt", "content": "hello\n"})
	srv, env := anthropic(t, anthropicfake.ToolTurn(
		anthropicfake.Reply{Blocks: []anthropicfake.ReplyBlock{write}},
		anthropicfake.Reply{Blocks: []anthropicfake.ReplyBlock{anthropicfake.Text("Done, or asked.")}},
	))
	_ = srv
	r := newRig(t, claudetest.RealCLI(t), env)
	j := r.begin("", "Write notes.txt")
	rec, o := r.run(j)
	last := rec.last()
	if last.Type != sse.PermissionRequired || len(last.Denials) != 1 || last.Denials[0].ToolName != "Write" ||
		last.Denials[0].ToolUseID == "" || !strings.HasPrefix(string(last.Denials[0].ToolInput), "{") {
		t.Fatalf("terminal %+v", last)
	}
	if o.Kind != ovrlrd.OutcomePermissionRequired || last.ConversationID != j.ConversationID {
		t.Fatalf("outcome %+v", o)
	}
	if _, err := r.saved(j.ConversationID, "notes.txt"); err == nil {
		t.Fatal("a denied tool ran")
	}

	// Allow: the app repeats the message with the approved tools.
	j2 := r.begin(j.ConversationID, "Write notes.txt", "Write", "Write")
	rec, _ = r.run(j2)
	if rec.last().Type != sse.Complete {
		t.Fatalf("approval retry ended with %+v", rec.last())
	}
	if b, err := r.saved(j.ConversationID, "notes.txt"); err != nil || string(b) != "hello\n" {
		t.Fatalf("approved tool did not run: %q %v", b, err)
	}
	msgs := r.messages(j.ConversationID)
	var system []string
	for _, m := range msgs {
		if m.Role == ovrlrd.RoleSystem {
			system = append(system, m.Content)
		}
		if m.Role == ovrlrd.RoleUser && m != msgs[0] {
			t.Fatal("the retry stored the prompt a second time")
		}
	}
	if !slices.Equal(system, []string{"✓ Approved: Write, Write"}) {
		t.Fatalf("system messages %q", system)
	}
}

// An API that keeps failing ends the turn after the configured retries,
// not the CLI's default ten.
func TestAPIErrorEndsTheTurnAfterItsRetries(t *testing.T) {
	srv, env := anthropic(t, func(anthropicfake.Request) anthropicfake.Reply { return anthropicfake.Reply{Status: 529} })
	r := newRig(t, claudetest.RealCLI(t), env, func(c *turn.Config) { c.Env.MaxRetries = 1 })
	rec, o := r.run(r.begin("", "Hi"))
	if o.Kind != ovrlrd.OutcomeError || !strings.Contains(rec.last().Message, "HTTP 529") || strings.Contains(rec.last().Message, "127.0.0.1") {
		t.Fatalf("terminal %+v", rec.last())
	}
	if n := len(turnRequests(srv)); n != 2 {
		t.Fatalf("%d model calls, want the first and one retry", n)
	}
}

// A lease makes one turn per conversation the rule.
func TestSecondTurnWhileOneRunsIsRefused(t *testing.T) {
	_, env := anthropic(t, anthropicfake.Say("ok"))
	r := newRig(t, claudetest.RealCLI(t), env)
	j := r.begin("", "first")
	_, err := r.beginTurn(turnRequest(r.user, j.ConversationID, "second"))
	if !ovrlrd.IsCode(err, ovrlrd.ECONFLICT) {
		t.Fatalf("second turn: %v", err)
	}
	r.run(j)
	if _, err := r.beginTurn(turnRequest(r.user, j.ConversationID, "third")); err != nil {
		t.Fatalf("after the first ended: %v", err)
	}
}
