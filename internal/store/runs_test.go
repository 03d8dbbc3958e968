package store_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/devkit/storetest"
)

func TestAcquireRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newStepClock()
	s := clockedStore(clock)
	conv := rand.Text()

	run, err := s.AcquireRun(ctx, conv, "a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	want := ovrlrd.Run{ConversationID: conv, Holder: "a", StartedAt: clock.Now(), ExpiresAt: clock.Now().Add(time.Minute)}
	if run != want {
		t.Fatalf("acquired %+v, want %+v", run, want)
	}
	if got, err := s.Run(ctx, conv); err != nil || got != want {
		t.Fatalf("run %+v, %v; want %+v", got, err, want)
	}
	_, err = s.AcquireRun(ctx, conv, "b", time.Minute)
	expectCode(t, err, ovrlrd.ECONFLICT)
	if ovrlrd.ErrorMessage(err) != "A turn is already running for this conversation." {
		t.Fatalf("message %q", ovrlrd.ErrorMessage(err))
	}

	// Another conversation is independent.
	if _, err := s.AcquireRun(ctx, rand.Text(), "b", time.Minute); err != nil {
		t.Fatal(err)
	}
}

func TestAcquireRunAfterExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newStepClock()
	s := clockedStore(clock)
	conv := rand.Text()
	if _, err := s.AcquireRun(ctx, conv, "dead", time.Minute); err != nil {
		t.Fatal(err)
	}

	clock.Advance(59 * time.Second)
	_, err := s.AcquireRun(ctx, conv, "b", time.Minute)
	expectCode(t, err, ovrlrd.ECONFLICT)

	clock.Advance(2 * time.Second)
	_, err = s.Run(ctx, conv)
	expectCode(t, err, ovrlrd.ENOTFOUND)
	expectCode(t, s.CancelRun(ctx, conv), ovrlrd.ENOTFOUND)
	run, err := s.AcquireRun(ctx, conv, "b", time.Minute)
	if err != nil {
		t.Fatalf("acquiring an expired lease: %v", err)
	}
	if run.Holder != "b" || run.Cancel {
		t.Fatalf("took over %+v", run)
	}
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
	if _, err := s.AcquireRun(ctx, conv, "a", time.Minute); err != nil {
		t.Fatal(err)
	}

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
	if _, err := s.AcquireRun(ctx, conv, "a", time.Minute); err != nil {
		t.Fatal(err)
	}

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
	if _, err := s.AcquireRun(ctx, conv, "b", time.Minute); err != nil {
		t.Fatalf("acquiring after release: %v", err)
	}
}
