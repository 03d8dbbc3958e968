package app_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/devkit/anthropicfake"
	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/devkit/sandboxtest"
)

// A session from the desk becomes a conversation: its messages show in the
// app, and the next turn resumes it, the model receiving what was said at
// the desk.
func TestImportedSessionResumes(t *testing.T) {
	model := anthropicfake.New(anthropicfake.Commands())
	t.Cleanup(model.Close)
	work := filepath.Join(sandboxtest.Dir(t), "work")
	s := newStack(t, "CLAUDE_PATH", claudetest.RealCLI(t), "ANTHROPIC_BASE_URL", model.URL, "ANTHROPIC_API_KEY", "sk-ant-import",
		"CLAUDE_WORK_ROOT", work, "CLAUDE_CONFIG_ROOT", filepath.Join(sandboxtest.Dir(t), "claude"))
	id, data := claudetest.DeskSession(t, model.URL, anthropicfake.CommandPrefix+"echo desk-marker")
	tok, uid := s.signIn(t, uniqueSub("import"), "")

	got, err := s.app.Stream.Imports.Import(context.Background(), uid, id, data, "From the desk")
	if err != nil {
		t.Fatal(err)
	}
	if got.MessageCount < 3 || got.Title == nil || *got.Title != "From the desk" {
		t.Fatalf("imported %+v", got)
	}
	c, msgs, _ := appDetail(t, s.call(t, "GET", "/chat/"+got.ConversationID, "", tok))
	if c["claudeSessionId"] != id || len(msgs) != got.MessageCount {
		t.Fatalf("conversation %v, %d messages", c, len(msgs))
	}
	if first := msgs[0]["content"].(string); !strings.Contains(first, "desk-marker") {
		t.Fatalf("first message %q", first)
	}
	var toolUse bool
	for _, m := range msgs {
		toolUse = toolUse || strings.HasPrefix(m["content"].(string), "[Tool Use: Bash]")
	}
	if !toolUse {
		t.Fatalf("no tool use among %v", msgs)
	}

	before := len(model.Requests())
	r, evs := s.stream(t, "/chat/"+got.ConversationID+"/stream", `{"message":"and now from the phone"}`, tok)
	if r.status != 200 || evs[len(evs)-1].Type != "complete" {
		t.Fatalf("the resumed turn: %d %s %+v", r.status, r.body, evs)
	}
	var resumed string
	for _, req := range model.Requests()[before:] {
		if strings.Contains(string(req.Raw), "and now from the phone") {
			resumed = string(req.Raw)
			break
		}
	}
	if !strings.Contains(resumed, "desk-marker") {
		t.Fatal("the model did not receive the desk's messages on the resumed turn")
	}

	// A second import of the session names the first conversation.
	_, err = s.app.Stream.Imports.Import(context.Background(), uid, id, data, "")
	if err == nil || !strings.Contains(err.Error(), got.ConversationID) {
		t.Fatalf("second import: %v", err)
	}
}
