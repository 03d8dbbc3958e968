package store_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/store"
)

// wantActive fails unless convID's active turn is holder's, begun at
// startedAt, whose last logged event is lastEventID ("" for none yet).
func wantActive(t *testing.T, s *store.Store, what, convID, holder string, startedAt time.Time, lastEventID string) {
	t.Helper()
	a, err := s.ActiveTurn(context.Background(), convID)
	switch {
	case err != nil:
		t.Fatalf("%s: %v", what, err)
	case a == nil:
		t.Fatalf("%s: no active turn", what)
	case a.ID != holder || !a.StartedAt.Time().Equal(startedAt):
		t.Fatalf("%s: turn %s begun %v, want %s begun %v", what, a.ID, a.StartedAt.Time(), holder, startedAt)
	case lastEventID == "" && a.LastEventID != nil:
		t.Fatalf("%s: last event %q before any", what, *a.LastEventID)
	case lastEventID != "" && (a.LastEventID == nil || *a.LastEventID != lastEventID):
		t.Fatalf("%s: last event %v, want %q", what, a.LastEventID, lastEventID)
	}
}

func wantNoActive(t *testing.T, s *store.Store, what, convID string) {
	t.Helper()
	if a, err := s.ActiveTurn(context.Background(), convID); a != nil || err != nil {
		t.Fatalf("%s: %+v, %v", what, a, err)
	}
}

// A conversation's active turn is its live lease's: who holds it, since
// when, and the id of the last event it logged, so a client knows it can
// reattach and from where.
func TestActiveTurn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newStepClock()
	s := clockedStore(clock)
	uid := uuid.NewString()
	conv, _, err := storetest.NewConversation(ctx, s, uid, "first")
	if err != nil {
		t.Fatal(err)
	}
	wantNoActive(t, s, "no turn running", conv.ID)
	wantNoActive(t, s, "an unknown conversation", uuid.NewString())
	wantNoActive(t, s, "a malformed conversation id", "not-a-conversation")

	holder := rand.Text()
	startedAt := clock.Now()
	if _, err := startTurn(t, s, uid, conv.ID, holder); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second) // the turn's start, not the read's time
	wantActive(t, s, "just started", conv.ID, holder, startedAt, "")
	appendLog(t, s, conv.ID, ovrlrd.EventBatch{TurnID: holder, First: 1, Events: logEvents(1, 3)})
	wantActive(t, s, "after a batch", conv.ID, holder, startedAt, holder+".3")
	appendLog(t, s, conv.ID, ovrlrd.EventBatch{TurnID: holder, First: 4, Events: logEvents(4, 5)})
	wantActive(t, s, "after the next batch", conv.ID, holder, startedAt, ovrlrd.EventID(holder, 5))

	if err := s.FinishTurn(ctx, ovrlrd.TurnFinish{UserID: uid, ConversationID: conv.ID, Holder: holder,
		Log: ovrlrd.EventBatch{TurnID: holder, First: 6, Events: [][]byte{[]byte(terminal)}}}); err != nil {
		t.Fatal(err)
	}
	wantNoActive(t, s, "after the turn finished", conv.ID)
}

// Only a live lease is an active turn: one whose holder died and let it
// expire is none, and a turn that took the conversation over is shown
// with its own log, not the log of the turn before.
func TestActiveTurnIsTheLiveLeases(t *testing.T) {
	t.Parallel()
	clock := newStepClock()
	s := clockedStore(clock)
	uid := uuid.NewString()
	dead := rand.Text()
	c, err := startTurn(t, s, uid, "", dead)
	if err != nil {
		t.Fatal(err)
	}
	appendLog(t, s, c.ID, ovrlrd.EventBatch{TurnID: dead, First: 1, Events: logEvents(1, 2)})
	wantActive(t, s, "running", c.ID, dead, clock.Now(), dead+".2")
	clock.Advance(2 * time.Minute) // startTurn's lease is a minute
	wantNoActive(t, s, "its lease expired", c.ID)

	next := rand.Text()
	if err := storetest.HoldRun(context.Background(), c.ID, next, clock.Now(), time.Minute); err != nil {
		t.Fatal(err)
	}
	wantActive(t, s, "taken over", c.ID, next, clock.Now(), "")
}
