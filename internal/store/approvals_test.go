package store_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/store"
)

// A live approval is answered once, by its owner, before it expires: the
// same decision again is the same answer, another is 409, a late one 410,
// and a foreign or missing request the same 404.
func TestApprovalAnswers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now()
	clock := func() time.Time { return now }
	s := store.New(storetest.DB(), store.Options{Table: storetest.TableName(), Now: func() time.Time { return clock() }})
	owner, conv := uuid.NewString(), uuid.NewString()
	request := func(ttl time.Duration) ovrlrd.Approval {
		t.Helper()
		a := ovrlrd.Approval{
			ID: uuid.NewString(), ConversationID: conv, UserID: owner, TurnID: rand.Text(),
			ToolName: "Bash", ToolInput: json.RawMessage(`{"command":"npm test"}`), ExpiresAt: ovrlrd.Timestamp(now.Add(ttl)),
		}
		if err := s.CreateApproval(ctx, a); err != nil {
			t.Fatal(err)
		}
		return a
	}
	a, b, late := request(time.Minute), request(time.Minute), request(time.Second)

	pending, err := s.PendingApprovals(ctx, conv)
	if err != nil || len(pending) != 3 {
		t.Fatalf("pending: %d, %v", len(pending), err)
	}
	got, err := answer(ctx, s, owner, conv, a.ID, ovrlrd.DecisionAllow, "")
	if err != nil || got.Decision != ovrlrd.DecisionAllow || got.ToolName != "Bash" || string(got.ToolInput) != `{"command":"npm test"}` {
		t.Fatalf("answer: %+v, %v", got, err)
	}
	if got, err := answer(ctx, s, owner, conv, a.ID, ovrlrd.DecisionAllow, ""); err != nil || got.Decision != ovrlrd.DecisionAllow {
		t.Fatalf("the same answer again: %+v, %v", got, err)
	}
	if _, err := answer(ctx, s, owner, conv, a.ID, ovrlrd.DecisionDeny, "no"); !errors.Is(err, ovrlrd.ErrApprovalAnswered) {
		t.Fatalf("another answer: %v", err)
	}
	// The waiting turn reads the answer.
	if seen, err := s.Approval(ctx, conv, a.ID); err != nil || seen.Decision != ovrlrd.DecisionAllow || seen.TurnID != a.TurnID {
		t.Fatalf("the turn's read: %+v, %v", seen, err)
	}

	// Another user, a missing request, malformed ids: the same 404, and
	// nothing answered.
	for _, c := range []struct{ user, conv, id string }{
		{uuid.NewString(), conv, b.ID}, {owner, conv, uuid.NewString()}, {owner, uuid.NewString(), b.ID}, {owner, conv, "../" + b.ID},
	} {
		if _, err := answer(ctx, s, c.user, c.conv, c.id, ovrlrd.DecisionDeny, ""); !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) || ovrlrd.ErrorMessage(err) != "Approval request not found" {
			t.Fatalf("%+v: %v", c, err)
		}
	}
	if _, err := answer(ctx, s, owner, conv, b.ID, "maybe", ""); !ovrlrd.IsCode(err, ovrlrd.EINVALID) {
		t.Fatalf("a decision that is neither: %v", err)
	}
	if seen, _ := s.Approval(ctx, conv, b.ID); seen.Decision != "" {
		t.Fatalf("refused answers changed the request: %+v", seen)
	}

	// Past its expiry, a request takes no answer and is no longer pending.
	now = now.Add(2 * time.Second)
	if _, err := answer(ctx, s, owner, conv, late.ID, ovrlrd.DecisionAllow, ""); !errors.Is(err, ovrlrd.ErrApprovalExpired) {
		t.Fatalf("a late answer: %v", err)
	}
	pending, err = s.PendingApprovals(ctx, conv)
	if err != nil || len(pending) != 1 || pending[0].ID != b.ID || pending[0].ConversationID != conv {
		t.Fatalf("pending after an answer and an expiry: %+v, %v", pending, err)
	}
	if !pending[0].Expired(now.Add(time.Minute)) || pending[0].Expired(now) {
		t.Fatalf("expiry of %v", time.Time(pending[0].ExpiresAt))
	}
}

// A request is made once, with what the turn needs to wait on it.
func TestCreateApprovalChecks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	good := ovrlrd.Approval{
		ID: uuid.NewString(), ConversationID: uuid.NewString(), UserID: uuid.NewString(), TurnID: rand.Text(),
		ToolName: "Bash", ToolInput: json.RawMessage(`{}`), ExpiresAt: ovrlrd.Timestamp(time.Now().Add(time.Minute)),
	}
	if err := s.CreateApproval(ctx, good); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateApproval(ctx, good); !ovrlrd.IsCode(err, ovrlrd.ECONFLICT) {
		t.Fatalf("the same request twice: %v", err)
	}
	for name, change := range map[string]func(*ovrlrd.Approval){
		"no tool":        func(a *ovrlrd.Approval) { a.ToolName = "" },
		"input not JSON": func(a *ovrlrd.Approval) { a.ToolInput = json.RawMessage(`{`) },
		"turn id":        func(a *ovrlrd.Approval) { a.TurnID = "a#b" },
		"request id":     func(a *ovrlrd.Approval) { a.ID = "x" },
	} {
		a := good
		a.ID = uuid.NewString()
		change(&a)
		if err := s.CreateApproval(ctx, a); !ovrlrd.IsCode(err, ovrlrd.EINVALID) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// A turn that stops waiting closes its request: an answer that came first
// is what the close returns, and once closed unanswered a request takes no
// answer and is no longer pending.
func TestCloseApproval(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	owner, conv := uuid.NewString(), uuid.NewString()
	request := func() ovrlrd.Approval {
		t.Helper()
		a := ovrlrd.Approval{
			ID: uuid.NewString(), ConversationID: conv, UserID: owner, TurnID: rand.Text(),
			ToolName: "Write", ToolInput: json.RawMessage(`{"file_path":"a.txt"}`), ExpiresAt: ovrlrd.Timestamp(time.Now().Add(time.Hour)),
		}
		if err := s.CreateApproval(ctx, a); err != nil {
			t.Fatal(err)
		}
		return a
	}
	unanswered, answered, open := request(), request(), request()

	// Closed before any answer: the turn sees none, and the user's late
	// answer is 410, whatever it is.
	got, err := s.CloseApproval(ctx, conv, unanswered.ID)
	if err != nil || got.Decision != "" || got.ID != unanswered.ID || got.TurnID != unanswered.TurnID {
		t.Fatalf("close unanswered: %+v, %v", got, err)
	}
	for _, d := range []ovrlrd.Decision{ovrlrd.DecisionAllow, ovrlrd.DecisionDeny} {
		if _, err := answer(ctx, s, owner, conv, unanswered.ID, d, ""); !errors.Is(err, ovrlrd.ErrApprovalExpired) {
			t.Fatalf("%s after the close: %v", d, err)
		}
	}
	if seen, _ := s.Approval(ctx, conv, unanswered.ID); seen.Decision != "" {
		t.Fatalf("an answer after the close was kept: %+v", seen)
	}

	// Answered first: the close returns the answer, and leaves it.
	if _, err := answer(ctx, s, owner, conv, answered.ID, ovrlrd.DecisionDeny, "not that file"); err != nil {
		t.Fatal(err)
	}
	got, err = s.CloseApproval(ctx, conv, answered.ID)
	if err != nil || got.Decision != ovrlrd.DecisionDeny || got.Message != "not that file" {
		t.Fatalf("close after the answer: %+v, %v", got, err)
	}
	if again, err := answer(ctx, s, owner, conv, answered.ID, ovrlrd.DecisionDeny, ""); err != nil || again.Decision != ovrlrd.DecisionDeny {
		t.Fatalf("the same answer after the close: %+v, %v", again, err)
	}

	// Only the request nobody closed or answered is pending.
	pending, err := s.PendingApprovals(ctx, conv)
	if err != nil || len(pending) != 1 || pending[0].ID != open.ID {
		t.Fatalf("pending: %+v, %v", pending, err)
	}

	// A missing request and malformed ids are not found.
	for _, c := range []struct{ conv, id string }{{conv, uuid.NewString()}, {uuid.NewString(), open.ID}, {conv, "../" + open.ID}, {"x", open.ID}} {
		if _, err := s.CloseApproval(ctx, c.conv, c.id); !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
			t.Fatalf("close %+v: %v", c, err)
		}
	}
}

// DecideApproval tells the answer that was recorded from its repeats, so
// the audit trail counts each answer once.
func TestDecideApprovalReportsTheRecordingCall(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	a := ovrlrd.Approval{
		ID: uuid.NewString(), ConversationID: uuid.NewString(), UserID: uuid.NewString(), TurnID: rand.Text(),
		ToolName: "Bash", ToolInput: json.RawMessage(`{}`), ExpiresAt: ovrlrd.Timestamp(time.Now().Add(time.Hour)),
	}
	if err := s.CreateApproval(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, recorded, err := s.DecideApproval(ctx, a.UserID, a.ConversationID, a.ID, ovrlrd.DecisionAllow, "")
	if err != nil || !recorded || got.Decision != ovrlrd.DecisionAllow {
		t.Fatalf("the first answer: %+v, %v, %v", got, recorded, err)
	}
	got, recorded, err = s.DecideApproval(ctx, a.UserID, a.ConversationID, a.ID, ovrlrd.DecisionAllow, "")
	if err != nil || recorded || got.Decision != ovrlrd.DecisionAllow {
		t.Fatalf("the same answer again: %+v, %v, %v", got, recorded, err)
	}
	if _, recorded, err = s.DecideApproval(ctx, a.UserID, a.ConversationID, a.ID, ovrlrd.DecisionDeny, ""); recorded || !errors.Is(err, ovrlrd.ErrApprovalAnswered) {
		t.Fatalf("another answer: %v, %v", recorded, err)
	}
}

// answer is DecideApproval without its recorded.
func answer(ctx context.Context, s *store.Store, userID, convID, id string, d ovrlrd.Decision, message string) (ovrlrd.Approval, error) {
	a, _, err := s.DecideApproval(ctx, userID, convID, id, d, message)
	return a, err
}
