package app_test

import (
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ovrlrd/cloud/internal/devkit/anthropicfake"
	"github.com/ovrlrd/cloud/internal/devkit/apnsfake"
	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
)

// liveStack runs the real CLI against the model stand-in, which answers
// "RUN: <command>" with one Bash call of it, then "Done."; prompts counts
// the model requests that carried such a prompt (a fresh run of it).
func liveStack(t *testing.T) (*stack, *apnsfake.Server, *atomic.Int32, *anthropicfake.Server) {
	t.Helper()
	prompts := &atomic.Int32{}
	commands := anthropicfake.Commands()
	model := anthropicfake.New(func(r anthropicfake.Request) anthropicfake.Reply {
		if strings.HasPrefix(r.Prompt(), anthropicfake.CommandPrefix) {
			prompts.Add(1)
		}
		return commands(r)
	})
	t.Cleanup(model.Close)
	s, apns := pushStack(t, "CLAUDE_PATH", claudetest.RealCLI(t), "ANTHROPIC_BASE_URL", model.URL, "ANTHROPIC_API_KEY", "sk-ant-test-key")
	return s, apns, prompts, model
}

// liveCommand writes a file: the CLI asks before it runs it (a read-only
// command such as a bare echo it runs unasked).
const liveCommand = "echo live-approved > out.txt; cat out.txt"

// liveEvent is an event of a live stream as a client that opted in reads
// it: the app's nine types and permission_request.
type liveEvent struct {
	Type           string          `json:"type"`
	ConversationID string          `json:"conversationId"`
	RequestID      string          `json:"requestId"`
	ToolName       string          `json:"toolName"`
	ToolInput      json.RawMessage `json:"toolInput"`
	ExpiresAt      string          `json:"expiresAt"`
	Content        string          `json:"content"`
	Message        string          `json:"message"`
}

// nextLive reads the stream's next event but pings; io.EOF at its end.
func (c *sseConn) nextLive(t *testing.T) (liveEvent, error) {
	t.Helper()
	for {
		data, err := c.rd.Next()
		if err != nil {
			return liveEvent{}, err
		}
		var e liveEvent
		if err := json.Unmarshal(data, &e); err != nil {
			t.Fatalf("%s: %q: %v", c.what, data, err)
		}
		if e.Type != "ping" {
			return e, nil
		}
	}
}

// Asked live, the user allows the tool from another instance (another
// device, another Lambda environment): the turn goes on with the tool's
// output, runs the prompt once, and every device got a push saying what
// Claude wants to do.
func TestLiveApprovalThroughAnotherInstance(t *testing.T) {
	a, apns, prompts, model := liveStack(t)
	b := a.twin(t)
	tok, uid := a.signIn(t, uniqueSub("live"), "") // registers a device
	c := newConversation(t, uid)
	live := a.startTurn(t, c.ID, tok, `{"message":`+jsonString(anthropicfake.CommandPrefix+liveCommand)+`,"approvals":"live"}`)
	var types []string
	var req liveEvent
	for req.Type != "permission_request" {
		e, err := live.nextLive(t)
		if err != nil {
			t.Fatalf("the stream ended before asking: %v %v", types, err)
		}
		types, req = append(types, e.Type), e
	}
	if req.ConversationID != c.ID || req.RequestID == "" || req.ToolName != "Bash" || req.ExpiresAt == "" ||
		!strings.Contains(string(req.ToolInput), `"command":"`+liveCommand+`"`) {
		t.Fatalf("permission_request %+v", req)
	}
	push := waitPushes(t, apns, 1)[0]
	aps, _ := push.Payload["aps"].(map[string]any)
	if push.Payload["type"] != "approval_needed" || push.Payload["conversationId"] != c.ID || aps["category"] != "TOOL_APPROVAL" ||
		alertBody(push) != "Claude wants to run Bash: echo …" {
		t.Fatalf("push %s", push.Raw)
	}
	// The other instance shows it pending and takes the answer.
	pending, _ := b.call(t, "GET", "/chat/"+c.ID, "", tok).json(t)["pendingApprovals"].([]any)
	if len(pending) != 1 || pending[0].(map[string]any)["requestId"] != req.RequestID {
		t.Fatalf("pendingApprovals on the other instance: %v", pending)
	}
	// A turn that waits is running: a second one is refused.
	second := b.request(t, "POST", "/chat/"+c.ID+"/stream", message("and another thing"), tok)
	second.Body.Close()
	if second.StatusCode != 409 {
		t.Fatalf("a second turn while one waits: %d", second.StatusCode)
	}
	path := "/chat/" + c.ID + "/approvals/" + req.RequestID
	if r := b.call(t, "POST", path, `{"decision":"allow"}`, tok); r.status != 200 {
		t.Fatalf("answer: %d %s", r.status, r.body)
	}
	var text string
	for {
		e, err := live.nextLive(t)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		types, text = append(types, e.Type), text+e.Content
	}
	want := []string{"tool_start", "permission_request", "tool_end", "chunk", "complete"}
	if !slices.Equal(types, want) || text != "Done." {
		t.Fatalf("events %v (%q), want %v", types, text, want)
	}
	if res := model.ToolResults(); !slices.Equal(res, []string{"live-approved"}) || prompts.Load() != 1 {
		t.Fatalf("the model got tool results %q, and the prompt %d times", res, prompts.Load())
	}
	if r := a.call(t, "POST", path, `{"decision":"allow"}`, tok); r.status != 200 {
		t.Fatalf("the same answer again: %d %s", r.status, r.body)
	}
	if r := a.call(t, "POST", path, `{"decision":"deny"}`, tok); r.status != 409 {
		t.Fatalf("another answer: %d %s", r.status, r.body)
	}
	if pending, _ := a.call(t, "GET", "/chat/"+c.ID, "", tok).json(t)["pendingApprovals"].([]any); len(pending) != 0 {
		t.Fatalf("pendingApprovals after the turn: %v", pending)
	}
}

// Without the opt-in, a client gets exactly today's stream: the tool is
// refused, the model says so, the turn ends with permission_required, and
// nothing is asked or pushed.
func TestWithoutLiveApprovalsTheStreamIsTodays(t *testing.T) {
	s, apns, _, _ := liveStack(t)
	tok, _ := s.signIn(t, uniqueSub("nolive"), "")
	for _, body := range []string{
		`{"message":` + jsonString(anthropicfake.CommandPrefix+liveCommand) + `}`,
		`{"message":` + jsonString(anthropicfake.CommandPrefix+liveCommand) + `,"approvals":null}`,
	} {
		resp := s.request(t, "POST", "/chat/stream", body, tok)
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		evs := nonPing(appRules(t, "the stream", string(raw)))
		var types []string
		for _, e := range evs {
			types = append(types, e.Type)
		}
		want := []string{"tool_start", "tool_end", "chunk", "permission_required"}
		if !slices.Equal(types, want) || len(evs[3].Denials) != 1 || evs[3].Denials[0].ToolName != "Bash" {
			t.Fatalf("%s: events %v, want %v; %+v", body, types, want, evs)
		}
		if strings.Contains(string(raw), "permission_request") {
			t.Fatalf("%s: a live request reached a client that did not ask", body)
		}
	}
	if n := len(apns.Requests()); n != 0 {
		t.Fatalf("%d pushes", n)
	}
}
