package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/store"
)

// openTurn starts a turn as the buffered route does and returns what its
// undo needs.
func openTurn(t *testing.T, s *store.Store, uid, convID, holder string) ovrlrd.Turn {
	t.Helper()
	started, err := s.StartTurn(context.Background(), ovrlrd.TurnStart{
		UserID: uid, ConversationID: convID, Holder: holder, Lease: time.Minute,
		Message: ovrlrd.NewMessage{Role: ovrlrd.RoleUser, Content: "a question"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return ovrlrd.Turn{UserID: uid, ConversationID: started.ConversationID, Holder: holder, OpeningID: started.Opening.ID, New: convID == ""}
}

// partitionItems counts what is left under a partition key.
func partitionItems(t *testing.T, pk string) int {
	t.Helper()
	var items []struct {
		SK string `dynamo:"SK"`
	}
	err := storetest.DB().Table(storetest.TableName()).Get("PK", pk).Consistent(true).All(context.Background(), &items)
	if err != nil {
		t.Fatal(err)
	}
	return len(items)
}

// A delivery claims the lease once: a redelivery, another holder, a lease
// another turn took over and a finished turn are all refused.
func TestClaimRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newStepClock()
	s := clockedStore(clock)
	uid := uuid.NewString()
	turn := openTurn(t, s, uid, "", "h1")

	expectCode(t, s.ClaimRun(ctx, turn.ConversationID, "someone-else", 2*time.Minute), ovrlrd.ECONFLICT)
	if err := s.ClaimRun(ctx, turn.ConversationID, "h1", 2*time.Minute); err != nil {
		t.Fatalf("first claim: %v", err)
	}
	run, err := s.Run(ctx, turn.ConversationID)
	if err != nil || !run.ExpiresAt.Equal(clock.Now().Add(2*time.Minute)) {
		t.Fatalf("the claim did not renew the lease: %+v %v", run, err)
	}
	expectCode(t, s.ClaimRun(ctx, turn.ConversationID, "h1", 2*time.Minute), ovrlrd.ECONFLICT)
	// The running turn's renewals keep the mark.
	if _, err := s.RenewRun(ctx, turn.ConversationID, "h1", time.Minute); err != nil {
		t.Fatal(err)
	}
	expectCode(t, s.ClaimRun(ctx, turn.ConversationID, "h1", 2*time.Minute), ovrlrd.ECONFLICT)
	// A claimed turn is not undone.
	expectCode(t, s.UndoStartTurn(ctx, turn), ovrlrd.ECONFLICT)
	if _, err := s.Conversation(ctx, uid, turn.ConversationID); err != nil {
		t.Fatalf("the refused undo deleted the conversation: %v", err)
	}
	// Once the turn has finished, a late delivery finds no lease.
	if err := s.FinishTurn(ctx, ovrlrd.TurnFinish{UserID: uid, ConversationID: turn.ConversationID, Holder: "h1",
		Outcome: ovrlrd.TurnOutcome{Kind: "complete"}}); err != nil {
		t.Fatal(err)
	}
	expectCode(t, s.ClaimRun(ctx, turn.ConversationID, "h1", 2*time.Minute), ovrlrd.ECONFLICT)

	// A lease that expired while its event waited is claimed if no other
	// turn took the conversation meanwhile, and refused if one did.
	late := openTurn(t, s, uid, "", "h2")
	taken := openTurn(t, s, uid, "", "h3")
	clock.Advance(time.Minute + time.Second)
	openTurn(t, s, uid, taken.ConversationID, "another turn")
	if err := s.ClaimRun(ctx, late.ConversationID, "h2", 2*time.Minute); err != nil {
		t.Fatalf("late claim: %v", err)
	}
	expectCode(t, s.ClaimRun(ctx, taken.ConversationID, "h3", 2*time.Minute), ovrlrd.ECONFLICT)
}

// A turn that never started leaves nothing: a new conversation is gone with
// its message and lease, an existing one keeps only what it had and takes
// the next turn at once.
func TestUndoStartTurn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	uid := uuid.NewString()

	fresh := openTurn(t, s, uid, "", "new-1")
	if err := s.UndoStartTurn(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	expectCode(t, func() error { _, err := s.Conversation(ctx, uid, fresh.ConversationID); return err }(), ovrlrd.ENOTFOUND)
	if n := partitionItems(t, "CONV#"+fresh.ConversationID); n != 0 {
		t.Fatalf("%d items left of the undone conversation", n)
	}

	c, _, err := storetest.NewConversation(ctx, s, uid, "earlier")
	if err != nil {
		t.Fatal(err)
	}
	turn := openTurn(t, s, uid, c.ID, "old-1")
	// Only its own holder undoes a turn.
	expectCode(t, s.UndoStartTurn(ctx, ovrlrd.Turn{UserID: uid, ConversationID: c.ID, Holder: "old-2", OpeningID: turn.OpeningID}), ovrlrd.ECONFLICT)
	if err := s.UndoStartTurn(ctx, turn); err != nil {
		t.Fatal(err)
	}
	msgs, _, err := s.Messages(ctx, c.ID, ovrlrd.Page{Limit: 10})
	if err != nil || len(msgs) != 1 || msgs[0].Content != "earlier" {
		t.Fatalf("messages after the undo: %+v %v", msgs, err)
	}
	if _, err := s.Conversation(ctx, uid, c.ID); err != nil {
		t.Fatalf("the existing conversation went with the undo: %v", err)
	}
	if _, err := s.Run(ctx, c.ID); !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
		t.Fatalf("lease after the undo: %v", err)
	}
	openTurn(t, s, uid, c.ID, "old-3")
}
