package turn_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ovrlrd/cloud/internal/api"
	"github.com/ovrlrd/cloud/internal/devkit/anthropicfake"
	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/sse"
)

// syncLog collects the service's log lines.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *syncLog) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// Two turns with all local state wiped in between: the second still resumes
// the first (the model sees it) and finds the file the first one wrote.
func TestContinuityAcrossEnvironments(t *testing.T) {
	write := anthropicfake.ToolTurn(
		anthropicfake.Reply{Blocks: []anthropicfake.ReplyBlock{anthropicfake.ToolUse("Bash", map[string]any{"command": "echo kept > kept.txt", "description": "Write a file"})}},
		anthropicfake.Reply{Blocks: []anthropicfake.ReplyBlock{anthropicfake.Text("Wrote it.")}},
	)
	read := anthropicfake.ToolTurn(
		anthropicfake.Reply{Blocks: []anthropicfake.ReplyBlock{anthropicfake.ToolUse("Bash", map[string]any{"command": "cat kept.txt", "description": "Read the file"})}},
		anthropicfake.Reply{Blocks: []anthropicfake.ReplyBlock{anthropicfake.Text("Yes.")}},
	)
	var turnTwo atomic.Bool
	srv, env := anthropic(t, func(req anthropicfake.Request) anthropicfake.Reply {
		if strings.Contains(req.Prompt(), "still there") {
			turnTwo.Store(true)
		}
		if turnTwo.Load() {
			return read(req)
		}
		return write(req)
	})
	r := newRig(t, claudetest.RealCLI(t), env)

	j := r.begin("", "Write kept.txt", "Bash")
	if rec, _ := r.run(j); rec.last().Type != sse.Complete {
		t.Fatalf("turn one: %+v", rec.last())
	}
	if b, err := r.saved(j.ConversationID, "kept.txt"); err != nil || string(b) != "kept\n" {
		t.Fatalf("turn one did not save the file: %q %v", b, err)
	}
	r.noFolders()

	// Every turn starts as on a fresh environment.
	before := len(turnRequests(srv))
	j2 := r.begin(j.ConversationID, "Is it still there?", "Bash")
	if rec, _ := r.run(j2); rec.last().Type != sse.Complete {
		t.Fatalf("turn two: %+v", rec.last())
	}
	reqs := turnRequests(srv)[before:]
	var seen []string
	for _, m := range reqs[0].Messages {
		seen = append(seen, m.Text())
	}
	if all := strings.Join(seen, "\n"); !strings.Contains(all, "Write kept.txt") || !strings.Contains(all, "Wrote it.") {
		t.Fatalf("turn two did not carry turn one: %q", all)
	}
	if !lastResultHas(reqs[len(reqs)-1], "kept") {
		t.Fatal("the file of turn one was not there in turn two")
	}
}

// lastResultHas reports whether the request's last message holds a tool
// result containing s.
func lastResultHas(req anthropicfake.Request, s string) bool {
	m, _ := req.LastUser()
	for _, res := range m.ToolResults() {
		if strings.Contains(res.ResultText(), s) {
			return true
		}
	}
	return false
}

// S3 refusing writes when a turn saves its folders: the answer the user saw is kept,
// the turn says its files were not, the conversation keeps naming the
// folders it had, and nothing of the turn stays on the machine.
func TestWorkspaceSaveFailureIsToldAndNothingStays(t *testing.T) {
	r := newRig(t, claudetest.FakeCLI(t), "")
	j := r.begin("", claudetest.Script("normal", "text", "one"))
	r.run(j)
	before := r.conversation(j.ConversationID)
	r.s3RO.Store(true)
	_, o := r.run(r.begin(j.ConversationID, claudetest.Script("normal", "text", "two")))
	if o.Kind != ovrlrd.OutcomeError || !strings.Contains(o.Message, "could not be saved") {
		t.Fatalf("turn with S3 down: %+v", o)
	}
	if !strings.Contains(r.logs.String(), "workspace save failed") {
		t.Fatalf("the failed save was not logged: %s", r.logs.String())
	}
	if msgs := r.messages(j.ConversationID); len(msgs) != 4 || msgs[3].Content != "two" {
		t.Fatalf("messages %+v", msgs)
	}
	after := r.conversation(j.ConversationID)
	if after.Workspace != before.Workspace || *after.ClaudeSessionID != *before.ClaudeSessionID {
		t.Fatalf("the conversation moved on without its folders: %+v, was %+v", after, before)
	}
	r.noFolders()
}

// Cost comes from what the upstream answered, as the proxy measured it, and
// adds up on the conversation and the user's day; a spent budget refuses the
// next turn before any CLI starts.
func TestCostAndBudget(t *testing.T) {
	srv, env := anthropic(t, anthropicfake.Say("Counted."))
	r := newRig(t, claudetest.RealCLI(t), env)
	j := r.begin("", "one")
	r.run(j)
	r.run(r.begin(j.ConversationID, "two"))
	c := r.conversation(j.ConversationID)
	day, _ := storetest.UsageToday(context.Background(), r.user)
	u := srv.Usage() // the turns' and the title's
	in, out := int64(u.InputTokens), int64(u.OutputTokens)
	if c.TurnCount != 2 || c.CostUSD <= 0 || day.CostUSD != c.CostUSD || day.Turns != 2 ||
		c.InputTokens != in || c.OutputTokens != out {
		t.Fatalf("conversation %+v, day %+v; the upstream answered %d input and %d output tokens", c, day, in, out)
	}

	_, err := api.BeginTurn(context.Background(), r.store, turnRequest(r.user, j.ConversationID, "three"), api.TurnRules{DailyBudgetUSD: day.CostUSD})
	if !ovrlrd.IsCode(err, ovrlrd.ERATELIMIT) || !strings.Contains(ovrlrd.ErrorMessage(err), "daily budget") {
		t.Fatalf("after the budget: %v", err)
	}
	if msgs := r.messages(j.ConversationID); len(msgs) != 4 {
		t.Fatalf("a refused turn wrote something: %d messages", len(msgs))
	}
}
