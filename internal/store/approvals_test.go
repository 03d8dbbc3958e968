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
	got, err := s.AnswerApproval(ctx, owner, conv, a.ID, ovrlrd.DecisionAllow, "")
	if err != nil || got.Decision != ovrlrd.DecisionAllow || got.ToolName != "Bash" || string(got.ToolInput) != `{"command":"npm test"}` {
		t.Fatalf("answer: %+v, %v", got, err)
	}
	if got, err := s.AnswerApproval(ctx, owner, conv, a.ID, ovrlrd.DecisionAllow, ""); err != nil || got.Decision != ovrlrd.DecisionAllow {
		t.Fatalf("the same answer again: %+v, %v", got, err)
	}
	if _, err := s.AnswerApproval(ctx, owner, conv, a.ID, ovrlrd.DecisionDeny, "no"); !errors.Is(err, ovrlrd.ErrApprovalAnswered) {
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
		if _, err := s.AnswerApproval(ctx, c.user, c.conv, c.id, ovrlrd.DecisionDeny, ""); !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) || ovrlrd.ErrorMessage(err) != "Approval request not found" {
			t.Fatalf("%+v: %v", c, err)
		}
	}
	if _, err := s.AnswerApproval(ctx, owner, conv, b.ID, "maybe", ""); !ovrlrd.IsCode(err, ovrlrd.EINVALID) {
		t.Fatalf("a decision that is neither: %v", err)
	}
	if seen, _ := s.Approval(ctx, conv, b.ID); seen.Decision != "" {
		t.Fatalf("refused answers changed the request: %+v", seen)
	}

	// Past its expiry, a request takes no answer and is no longer pending.
	now = now.Add(2 * time.Second)
	if _, err := s.AnswerApproval(ctx, owner, conv, late.ID, ovrlrd.DecisionAllow, ""); !errors.Is(err, ovrlrd.ErrApprovalExpired) {
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
