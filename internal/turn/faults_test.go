package turn_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/claude"
	"github.com/ovrlrd/cloud/internal/claude/claudetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/relay"
	"github.com/ovrlrd/cloud/internal/sse"
	"github.com/ovrlrd/cloud/internal/turn"
)

// The tests in this file drive a scripted fake CLI for faults the real one
// cannot be made to show on demand.

func fakeRig(t *testing.T, mutate ...func(*turn.Config)) *rig {
	t.Helper()
	t.Cleanup(turn.Shorten(100*time.Millisecond, time.Hour, 0))
	r := newRig(t, claudetest.FakeCLI(t), "", mutate...)
	t.Cleanup(func() { claudetest.AssertNoRunProcesses(t, claude.RunMarkerVar) })
	return r
}

func TestCrashMidStream(t *testing.T) {
	r := fakeRig(t)
	j := r.begin("", claudetest.Script("crash", "n", 2))
	rec, o := r.run(j)
	if o.Kind != relay.Error || rec.last().Message != "Claude stopped unexpectedly (exit code 1)." {
		t.Fatalf("terminal %+v", rec.last())
	}
	// What was produced before the crash is kept.
	if msgs := r.messages(j.ConversationID); len(msgs) != 2 || msgs[1].Role != ovrlrd.RoleAssistant {
		t.Fatalf("messages %+v", msgs)
	}
}

func TestSilencePastTheIdleDeadline(t *testing.T) {
	r := fakeRig(t, func(c *turn.Config) { c.IdleTimeout = 700 * time.Millisecond })
	start := time.Now()
	rec, _ := r.run(r.begin("", claudetest.Script("silent")))
	if rec.last().Type != sse.Error || rec.last().Message != "Request timed out" {
		t.Fatalf("terminal %+v", rec.last())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestOutputPastTheTotalDeadline(t *testing.T) {
	r := fakeRig(t, func(c *turn.Config) { c.Timeout = 1500 * time.Millisecond })
	start := time.Now()
	rec, _ := r.run(r.begin("", claudetest.Script("slow-total")))
	if rec.last().Message != "Request timed out" {
		t.Fatalf("terminal %+v", rec.last())
	}
	if d := time.Since(start); d > 6*time.Second {
		t.Fatalf("took %v", d)
	}
}

// A CLI that ignores SIGTERM, with a child in its own session that ignores
// it too: both are gone when the turn returns (checked in cleanup).
func TestChildrenThatIgnoreSIGTERMAreKilled(t *testing.T) {
	r := fakeRig(t, func(c *turn.Config) { c.Timeout = time.Second })
	start := time.Now()
	rec, _ := r.run(r.begin("", claudetest.Script("ignore-term")))
	if rec.last().Message != "Request timed out" {
		t.Fatalf("terminal %+v", rec.last())
	}
	if d := time.Since(start); d > 6*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestGarbageAndHugeLines(t *testing.T) {
	r := fakeRig(t)
	j := r.begin("", claudetest.Script("garbage"))
	rec, _ := r.run(j)
	if rec.last().Type != sse.Complete {
		t.Fatalf("terminal %+v", rec.last())
	}
	// The text after the garbage and the 20 MiB line still arrived.
	msgs := r.messages(j.ConversationID)
	if len(msgs) != 2 || msgs[1].Content != "after the garbage" {
		t.Fatalf("messages %+v", msgs)
	}
}

func TestMissingOrBrokenCLI(t *testing.T) {
	notExec := filepath.Join(t.TempDir(), "claude")
	os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644)
	for path, want := range map[string]string{
		"/nonexistent/claude": "not found",
		notExec:               "not executable",
	} {
		r := fakeRig(t, func(c *turn.Config) { c.CLIPath = path })
		rec, o := r.run(r.begin("", "hi"))
		if o.Kind != relay.Error || !strings.Contains(rec.last().Message, want) {
			t.Fatalf("%s: terminal %+v", path, rec.last())
		}
	}
}

func TestCancelStopsTheTurnAndKeepsItsOutput(t *testing.T) {
	r := fakeRig(t)
	text := func(s string) map[string]any {
		return map[string]any{"type": "assistant", "message": map[string]any{"content": []any{map[string]any{"type": "text", "text": s}}}}
	}
	j := r.begin("", claudetest.Script("lines", "delay_ms", 1000, "lines", []any{
		map[string]any{"type": "system", "subtype": "init", "session_id": "s-1"},
		text("partial answer"),
		text(" never sent"),
	}))
	go func() {
		time.Sleep(1500 * time.Millisecond)
		if err := r.store.CancelRun(context.Background(), j.ConversationID); err != nil {
			t.Error(err)
		}
	}()
	start := time.Now()
	rec, _ := r.runSlow(j)
	if rec.last().Message != "Cancelled" {
		t.Fatalf("terminal %+v", rec.last())
	}
	// The cancel came 1.5 s in; the turn saw it within its check interval.
	if d := time.Since(start); d > 3500*time.Millisecond {
		t.Fatalf("cancel took %v", d)
	}
	if msgs := r.messages(j.ConversationID); len(msgs) != 2 || msgs[1].Content != "partial answer" {
		t.Fatalf("messages %+v", msgs)
	}
}

// Deleting the conversation mid-turn stops the turn and nothing is written.
func TestDeleteMidTurnWritesNothing(t *testing.T) {
	r := fakeRig(t)
	j := r.begin("", claudetest.Script("silent"))
	go func() {
		time.Sleep(400 * time.Millisecond)
		if err := r.store.DeleteConversation(context.Background(), r.user, j.ConversationID); err != nil {
			t.Error(err)
		}
	}()
	rec, _ := r.runSlow(j)
	if rec.last().Type != sse.Error {
		t.Fatalf("terminal %+v", rec.last())
	}
	if _, err := r.store.Conversation(context.Background(), r.user, j.ConversationID); !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
		t.Fatalf("conversation: %v", err)
	}
	if msgs, _, _ := r.store.Messages(context.Background(), j.ConversationID, ovrlrd.Page{Limit: 10}); len(msgs) != 0 {
		t.Fatalf("%d messages written after the delete", len(msgs))
	}
	r.noFolders()
}

// A client that leaves mid-turn: the turn still finishes and saves.
func TestClientDisconnectStillSaves(t *testing.T) {
	r := fakeRig(t)
	j := r.begin("", claudetest.Script("normal", "text", "kept for later"))
	rec := &recorder{failAt: 1}
	o := r.svc.Run(context.Background(), j, rec)
	if o.Kind != relay.Complete {
		t.Fatalf("outcome %+v", o)
	}
	if msgs := r.messages(j.ConversationID); len(msgs) != 2 || msgs[1].Content != "kept for later" {
		t.Fatalf("messages %+v", msgs)
	}
}

func TestRequestValidation(t *testing.T) {
	r := fakeRig(t, func(c *turn.Config) { c.AllowList = []string{"Bash", "Read", "Grep(src:*)"} })
	tools := make([]string, 51)
	for i := range tools {
		tools[i] = "Read"
	}
	cases := []struct {
		name string
		req  turn.Request
		want string
	}{
		{"empty", turnRequest(r.user, "", ""), `Field "message" is required.`},
		{"too long", turnRequest(r.user, "", strings.Repeat("✓", turn.MaxMessage+1)), `Field "message" must be at most 100000 characters.`},
		{"tool outside the list", turnRequest(r.user, "", "hi", "Write"), `Tool "Write" is not allowed on this server.`},
		{"pattern of a listed tool", turnRequest(r.user, "", "hi", "Read(/etc/*)"), ""},
		{"pattern listed verbatim", turnRequest(r.user, "", "hi", "Grep(src:*)"), ""},
		{"other pattern of an unlisted tool", turnRequest(r.user, "", "hi", "Grep(etc:*)"), `Tool "Grep(etc:*)" is not allowed on this server.`},
		{"a space splits the CLI argument", turnRequest(r.user, "", "hi", "Bash(git log:*)"), `Tool "Bash(git log:*)" is not allowed on this server.`},
		{"space in a name", turnRequest(r.user, "", "hi", "Bash Write"), `Tool "Bash Write" is not allowed on this server.`},
		{"unbalanced pattern", turnRequest(r.user, "", "hi", "Bash(x"), `Tool "Bash(x" is not allowed on this server.`},
		{"too many", turnRequest(r.user, "", "hi", tools...), `Field "allowedTools" may hold at most 50 tools.`},
		{"foreign conversation", turnRequest(r.user, "6f1c0000-0000-4000-8000-000000000000", "hi"), "Conversation not found"},
	}
	for _, c := range cases {
		_, err := r.svc.Begin(context.Background(), c.req)
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if ovrlrd.ErrorMessage(err) != c.want {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
}
