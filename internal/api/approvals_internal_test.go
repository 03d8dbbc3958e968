package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/auth"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// An answer's body: a decision, and a message of at most 2000 characters
// of text, which the strict decoder cannot hand over invalid but which is
// checked all the same.
func TestApprovalBodyValidate(t *testing.T) {
	allow, maybe := ovrlrd.DecisionAllow, ovrlrd.Decision("maybe")
	for _, k := range []struct {
		name string
		body approvalBody
		want string
	}{
		{"allow", approvalBody{Decision: &allow}, ""},
		{"a message at the limit", approvalBody{Decision: &allow, Message: strings.Repeat("é", 2000)}, ""},
		{"no decision", approvalBody{Message: "x"}, `Field "decision" is required.`},
		{"neither", approvalBody{Decision: &maybe}, `Field "decision" must be "allow" or "deny".`},
		{"a message past the limit", approvalBody{Decision: &allow, Message: strings.Repeat("é", 2001)}, `Field "message" must be at most 2000 characters.`},
		{"invalid UTF-8", approvalBody{Decision: &allow, Message: "a\xffb"}, `Field "message" must be valid UTF-8.`},
	} {
		err := k.body.Validate()
		if got := ovrlrd.ErrorMessage(err); (err == nil) != (k.want == "") || err != nil && (got != k.want || StatusOf(err) != 400) {
			t.Errorf("%s: %v", k.name, err)
		}
	}
}

// "approvals" is "live" or nothing at all.
func TestStreamBodyApprovals(t *testing.T) {
	for _, k := range []struct {
		raw  string
		live bool
		ok   bool
	}{
		{``, false, true}, {`null`, false, true}, {`"live"`, true, true}, {`"\u006cive"`, true, true},
		{`"yes"`, false, false}, {`"Live"`, false, false}, {`""`, false, false}, {`true`, false, false}, {`["live"]`, false, false},
	} {
		b := streamBody{Approvals: json.RawMessage(k.raw)}
		err := b.Validate()
		if (err == nil) != k.ok || b.live != k.live || err != nil && ovrlrd.ErrorMessage(err) != `Field "approvals" must be "live".` {
			t.Errorf("approvals %s: live %v, %v", k.raw, b.live, err)
		}
	}
}

// detailReads are the reads of GET /chat/{id}, each of which waits, up to
// a while, for all four to have begun: a read made after another shows as
// a late one.
type detailReads struct {
	Conversations // the rest is never called
	conv          ovrlrd.Conversation
	active        *ovrlrd.ActiveTurn
	turnErr       error
	pending       []ovrlrd.Approval
	pendErr       error

	begun    sync.WaitGroup
	all      chan struct{}
	mu       sync.Mutex
	waitedOn []string // reads that gave up waiting for the others
}

func newDetailReads() *detailReads {
	d := &detailReads{all: make(chan struct{})}
	d.begun.Add(4)
	go func() { d.begun.Wait(); close(d.all) }()
	return d
}

func (d *detailReads) meet(read string) {
	d.begun.Done()
	select {
	case <-d.all:
	case <-time.After(2 * time.Second):
		d.mu.Lock()
		d.waitedOn = append(d.waitedOn, read)
		d.mu.Unlock()
	}
}

func (d *detailReads) Conversation(context.Context, string, string) (ovrlrd.Conversation, error) {
	d.meet("conversation")
	return d.conv, nil
}

func (d *detailReads) Messages(context.Context, string, ovrlrd.Page) ([]ovrlrd.Message, string, error) {
	d.meet("messages")
	return []ovrlrd.Message{}, "", nil
}

func (d *detailReads) ActiveTurn(context.Context, string) (*ovrlrd.ActiveTurn, error) {
	d.meet("running turn")
	return d.active, d.turnErr
}

func (d *detailReads) PendingApprovals(context.Context, string) ([]ovrlrd.Approval, error) {
	d.meet("pending approvals")
	return d.pending, d.pendErr
}

// GET /chat/{id} reads the requests beside the conversation and the running
// turn, and shows those of the running turn only: [] when no turn runs,
// when the lease is not a turn's, and when either read fails, which never
// fails the route.
func TestDetailShowsTheRunningTurnsRequests(t *testing.T) {
	const conv, turn = "6f1c2b7e-3d4a-4b5c-8d9e-0a1b2c3d4e5f", "TURNA"
	exp := ovrlrd.Timestamp(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
	mine := ovrlrd.Approval{ID: "r1", ConversationID: conv, UserID: "u", TurnID: turn, ToolName: "Bash",
		ToolInput: json.RawMessage(`{"command":"ls"}`), ExpiresAt: exp}
	noInput := ovrlrd.Approval{ID: "r2", ConversationID: conv, UserID: "u", TurnID: turn, ToolName: "Write", ExpiresAt: exp}
	earlier := ovrlrd.Approval{ID: "r3", ConversationID: conv, UserID: "u", TurnID: "TURNB", ToolName: "Bash",
		ToolInput: json.RawMessage(`{}`), ExpiresAt: exp}
	running := &ovrlrd.ActiveTurn{ID: turn, StartedAt: exp}
	shown := `[{"requestId":"r1","conversationId":"` + conv + `","toolName":"Bash","toolInput":{"command":"ls"},"expiresAt":"2026-11-27T12:00:00.000Z"},` +
		`{"requestId":"r2","conversationId":"` + conv + `","toolName":"Write","toolInput":{},"expiresAt":"2026-11-27T12:00:00.000Z"}]`
	for _, k := range []struct {
		name     string
		lastTurn string
		active   *ovrlrd.ActiveTurn
		turnErr  error
		pending  []ovrlrd.Approval
		pendErr  error
		want     string
	}{
		{"the running turn's", turn, running, nil, []ovrlrd.Approval{mine, earlier, noInput}, nil, shown},
		{"none", turn, running, nil, nil, nil, `[]`},
		{"no turn runs", turn, nil, nil, []ovrlrd.Approval{mine}, nil, `[]`},
		{"the lease is not the last turn's", "TURNB", running, nil, []ovrlrd.Approval{mine}, nil, `[]`},
		{"the turn's read failed", turn, running, errors.New("table unavailable"), []ovrlrd.Approval{mine}, nil, `[]`},
		{"the requests' read failed", turn, running, nil, []ovrlrd.Approval{mine}, errors.New("table unavailable"), `[]`},
	} {
		d := newDetailReads()
		d.conv = ovrlrd.Conversation{ID: conv, UserID: "u", LastTurn: k.lastTurn}
		d.active, d.turnErr, d.pending, d.pendErr = k.active, k.turnErr, k.pending, k.pendErr
		s := newServer(Deps{Log: slog.New(slog.DiscardHandler), Conversations: d})
		req := httptest.NewRequest("GET", "/chat/"+conv, nil)
		req.SetPathValue("id", conv)
		rec := httptest.NewRecorder()
		s.getConversation(rec, req, auth.Principal{UserID: "u"})
		var body struct {
			PendingApprovals json.RawMessage `json:"pendingApprovals"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != 200 {
			t.Fatalf("%s: %d %s", k.name, rec.Code, rec.Body)
		}
		if string(body.PendingApprovals) != k.want {
			t.Errorf("%s: pendingApprovals %s, want %s", k.name, body.PendingApprovals, k.want)
		}
		if len(d.waitedOn) > 0 {
			t.Errorf("%s: the reads did not run together: %v waited for the others", k.name, d.waitedOn)
		}
	}
}
