package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/store"
)

func gatedStart(s *store.Store, uid, convID, holder string, l ovrlrd.RateLimit, budget float64) (ovrlrd.TurnStarted, error) {
	return s.StartTurn(context.Background(), ovrlrd.TurnStart{
		UserID: uid, ConversationID: convID, Holder: holder, Lease: time.Minute,
		Message: ovrlrd.NewMessage{Role: ovrlrd.RoleUser, Content: "hi"},
		Limit:   l, BudgetUSD: budget,
	})
}

// newGated gives a new user a conversation whose turn h0 runs.
func newGated(t *testing.T) (*store.Store, string, ovrlrd.TurnStarted) {
	t.Helper()
	s := storetest.New(t)
	uid := uuid.NewString()
	c, err := gatedStart(s, uid, "", "h0", ovrlrd.RateLimit{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return s, uid, c
}

// counted is how many requests l's current window holds.
func counted(t *testing.T, s *store.Store, l ovrlrd.RateLimit) int {
	t.Helper()
	d, err := s.Counted(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	return l.N - d.Remaining
}

func conversationsOf(t *testing.T, s *store.Store, uid string) int {
	t.Helper()
	convs, _, err := s.ListConversations(context.Background(), uid, ovrlrd.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return len(convs)
}

// The turn limit is counted by the transaction that starts the turn: of
// concurrent starts exactly the limit's N begin, and a refused one writes
// nothing, not even its count.
func TestStartTurnCountsTheLimitInItsTransaction(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	uid := uuid.NewString()
	l := ovrlrd.RateLimit{Key: "turn#" + uid, N: 3, Window: time.Hour}

	first, err := gatedStart(s, uid, "", "h0", l, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n := counted(t, s, l); n != 1 {
		t.Fatalf("the window holds %d after one turn, want 1", n)
	}
	const tries = 8
	errs := make([]error, tries)
	var wg sync.WaitGroup
	for i := range tries {
		wg.Go(func() { _, errs[i] = gatedStart(s, uid, "", uuid.NewString(), l, 0) })
	}
	wg.Wait()
	began := 0
	for _, err := range errs {
		switch {
		case err == nil:
			began++
		case !errors.Is(err, ovrlrd.ErrRateLimited):
			t.Fatalf("a concurrent start: %v", err)
		}
	}
	if began != l.N-1 {
		t.Fatalf("%d concurrent starts began, want %d", began, l.N-1)
	}
	if n := conversationsOf(t, s, uid); n != l.N {
		t.Fatalf("%d conversations after %d allowed turns: the refused ones wrote", n, l.N)
	}
	// The limit answers first, even for a conversation whose turn runs.
	if _, err := gatedStart(s, uid, first.ConversationID, "h1", l, 0); !errors.Is(err, ovrlrd.ErrRateLimited) {
		t.Fatalf("a turn over the limit on a running conversation: %v", err)
	}
	if msgs, _, _ := s.Messages(context.Background(), first.ConversationID, ovrlrd.Page{Limit: 10}); len(msgs) != 1 {
		t.Fatalf("a refused turn wrote a message: %d", len(msgs))
	}
}

// A start that fails for another reason counts nothing and writes
// nothing; a missing and a foreign conversation fail the same way.
func TestAFailedStartCountsNothing(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	owner, other := uuid.NewString(), uuid.NewString()
	l := ovrlrd.RateLimit{Key: "turn#" + other, N: 5, Window: time.Hour}
	c, err := gatedStart(s, owner, "", "h0", ovrlrd.RateLimit{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var answers []string
	for _, id := range []string{c.ConversationID, uuid.NewString()} {
		_, err := gatedStart(s, other, id, "h1", l, 0)
		expectCode(t, err, ovrlrd.ENOTFOUND)
		answers = append(answers, err.Error())
	}
	if answers[0] != answers[1] {
		t.Fatalf("a foreign and a missing conversation answer %q and %q", answers[0], answers[1])
	}
	if n := counted(t, s, l); n != 0 {
		t.Fatalf("failed starts counted %d", n)
	}
	if _, err := gatedStart(s, owner, c.ConversationID, "h2", ovrlrd.RateLimit{Key: "turn#" + owner, N: 5, Window: time.Hour}, 0); !ovrlrd.IsCode(err, ovrlrd.ECONFLICT) {
		t.Fatalf("a turn on a running conversation: %v", err)
	}
	if n := counted(t, s, ovrlrd.RateLimit{Key: "turn#" + owner, N: 5, Window: time.Hour}); n != 0 {
		t.Fatalf("a refused turn counted %d", n)
	}
}

// The daily budget is a condition of the same transaction.
func TestStartTurnRefusesASpentBudget(t *testing.T) {
	t.Parallel()
	s, uid, c := newGated(t)
	ctx := context.Background()
	err := s.FinishTurn(ctx, ovrlrd.TurnFinish{
		UserID: uid, ConversationID: c.ConversationID, Holder: "h0", Segments: []string{"a"},
		Outcome: ovrlrd.TurnOutcome{Kind: ovrlrd.OutcomeComplete, Text: "a"}, Usage: ovrlrd.Usage{CostUSD: 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gatedStart(s, uid, c.ConversationID, "h1", ovrlrd.RateLimit{}, 2.5); err != nil {
		t.Fatalf("a turn within the budget: %v", err)
	}
	if err := s.ReleaseRun(ctx, c.ConversationID, "h1"); err != nil {
		t.Fatal(err)
	}
	l := ovrlrd.RateLimit{Key: "turn#" + uid, N: 5, Window: time.Hour}
	for _, conv := range []string{c.ConversationID, ""} {
		_, err := gatedStart(s, uid, conv, uuid.NewString(), l, 2)
		expectCode(t, err, ovrlrd.ERATELIMIT)
		if errors.Is(err, ovrlrd.ErrRateLimited) || err.Error() != ovrlrd.BudgetSpent(2).Error() {
			t.Fatalf("a spent budget answered %v", err)
		}
	}
	if n := conversationsOf(t, s, uid); n != 1 {
		t.Fatalf("a refused new turn created a conversation: %d", n)
	}
	if n := counted(t, s, l); n != 0 {
		t.Fatalf("refused turns counted %d", n)
	}
}

// A message the app appends is counted by its own transaction too.
func TestAppendMessageCountsTheLimitInItsTransaction(t *testing.T) {
	t.Parallel()
	s, uid, c := newGated(t)
	ctx := context.Background()
	l := ovrlrd.RateLimit{Key: "write#" + uid, N: 1, Window: time.Hour}
	if _, err := s.AppendMessage(ctx, uid, c.ConversationID, ovrlrd.RoleSystem, "one", l); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendMessage(ctx, uid, c.ConversationID, ovrlrd.RoleSystem, "two", l); !errors.Is(err, ovrlrd.ErrRateLimited) {
		t.Fatalf("an append over the limit: %v", err)
	}
	if msgs, _, _ := s.Messages(ctx, c.ConversationID, ovrlrd.Page{Limit: 10}); len(msgs) != 2 {
		t.Fatalf("%d messages, want the opening one and the allowed one", len(msgs))
	}
	_, err := s.AppendMessage(ctx, uid, c.ConversationID, ovrlrd.RoleSystem, "three", ovrlrd.RateLimit{Key: "x", N: 0, Window: time.Hour})
	expectCode(t, err, ovrlrd.EINVALID)
}
