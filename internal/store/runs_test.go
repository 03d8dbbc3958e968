package store_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// holdRun gives conv's lease to holder for a minute from the store's now.
func holdRun(t *testing.T, ctx context.Context, conv, holder string, now time.Time) {
	t.Helper()
	if err := storetest.HoldRun(ctx, conv, holder, now, time.Minute); err != nil {
		t.Fatal(err)
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newStepClock()
	s := clockedStore(clock)
	conv := rand.Text()

	holdRun(t, ctx, conv, "a", clock.Now())
	want := ovrlrd.Run{ConversationID: conv, Holder: "a", StartedAt: clock.Now(), ExpiresAt: clock.Now().Add(time.Minute)}
	if got, err := s.Run(ctx, conv); err != nil || got != want {
		t.Fatalf("run %+v, %v; want %+v", got, err, want)
	}
	// Another conversation is independent.
	_, err := s.Run(ctx, rand.Text())
	expectCode(t, err, ovrlrd.ENOTFOUND)
}

// An expired lease (its holder died) counts as none, and its holder no
// longer renews it once another turn took the conversation.
func TestRunAfterExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newStepClock()
	s := clockedStore(clock)
	conv := rand.Text()
	holdRun(t, ctx, conv, "dead", clock.Now())

	clock.Advance(59 * time.Second)
	if got, err := s.Run(ctx, conv); err != nil || got.Holder != "dead" {
		t.Fatalf("before expiry: %+v, %v", got, err)
	}

	clock.Advance(2 * time.Second)
	_, err := s.Run(ctx, conv)
	expectCode(t, err, ovrlrd.ENOTFOUND)
	expectCode(t, s.CancelRun(ctx, conv), ovrlrd.ENOTFOUND)
	holdRun(t, ctx, conv, "b", clock.Now())
	_, err = s.RenewRun(ctx, conv, "dead", time.Minute)
	expectCode(t, err, ovrlrd.ECONFLICT)
}

func TestCancelRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newStepClock()
	s := clockedStore(clock)
	conv := rand.Text()
	expectCode(t, s.CancelRun(ctx, conv), ovrlrd.ENOTFOUND)
	holdRun(t, ctx, conv, "a", clock.Now())

	clock.Advance(30 * time.Second)
	run, err := s.RenewRun(ctx, conv, "a", time.Minute)
	if err != nil || run.Cancel || !run.ExpiresAt.Equal(clock.Now().Add(time.Minute)) {
		t.Fatalf("renewed %+v, %v", run, err)
	}
	if err := s.CancelRun(ctx, conv); err != nil {
		t.Fatal(err)
	}
	run, err = s.RenewRun(ctx, conv, "a", time.Minute)
	if err != nil || !run.Cancel || run.Holder != "a" {
		t.Fatalf("after cancel renewed %+v, %v; want Cancel", run, err)
	}
	_, err = s.RenewRun(ctx, conv, "b", time.Minute)
	expectCode(t, err, ovrlrd.ECONFLICT)
}

func TestReleaseRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	conv := rand.Text()
	holdRun(t, ctx, conv, "a", time.Now())

	expectCode(t, s.ReleaseRun(ctx, conv, "b"), ovrlrd.ECONFLICT)
	if got, err := s.Run(ctx, conv); err != nil || got.Holder != "a" {
		t.Fatalf("after a wrong release: %+v, %v", got, err)
	}
	if err := s.ReleaseRun(ctx, conv, "a"); err != nil {
		t.Fatal(err)
	}
	_, err := s.Run(ctx, conv)
	expectCode(t, err, ovrlrd.ENOTFOUND)
	if err := s.ReleaseRun(ctx, conv, "a"); err != nil {
		t.Fatalf("releasing twice: %v", err)
	}
}

// AcquireRun takes a free or expired lease, and never a live one.
func TestAcquireRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newStepClock()
	s := clockedStore(clock)
	conv := rand.Text()
	if err := s.AcquireRun(ctx, conv, "push", time.Minute); err != nil {
		t.Fatal(err)
	}
	expectCode(t, s.AcquireRun(ctx, conv, "turn", time.Minute), ovrlrd.ECONFLICT)
	if got, err := s.Run(ctx, conv); err != nil || got.Holder != "push" {
		t.Fatalf("run %+v, %v", got, err)
	}
	clock.Advance(61 * time.Second)
	if err := s.AcquireRun(ctx, conv, "next", time.Minute); err != nil {
		t.Fatalf("an expired lease: %v", err)
	}
	if err := s.ReleaseRun(ctx, conv, "next"); err != nil {
		t.Fatal(err)
	}
	if err := s.AcquireRun(ctx, conv, "after", time.Minute); err != nil {
		t.Fatalf("a released lease: %v", err)
	}
}
