package auth_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ovrlrd/cloud/internal/auth"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/store"
)

// handOver is a Finisher that records what it is given, or refuses it.
type handOver struct {
	mu     sync.Mutex
	ids    []string
	refuse error
}

func (h *handOver) Finish(_ context.Context, userID string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.refuse != nil {
		return h.refuse
	}
	h.ids = append(h.ids, userID)
	return nil
}

func (r *rig) withFinisher(f auth.Finisher, cleaners ...auth.AccountCleaner) *auth.Service {
	o := r.opts
	o.Finisher, o.Cleaners = f, cleaners
	return auth.New(o)
}

// DeleteAccount answers once the account is closed: its writes are refused
// and its token stops working at once, and the rest is handed over.
// FinishDeletion, which the finisher runs, then does the rest, as often as
// it is run.
func TestDeleteAccountHandsTheRestOver(t *testing.T) {
	r := newRig(t, open)
	ctx := context.Background()
	fin := &handOver{}
	svc := r.withFinisher(fin)
	g := r.signIn(uniq("016"), "")
	p, err := svc.Authenticate(ctx, bearer(g.SessionToken))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteAccount(ctx, p, client); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fin.ids, []string{p.UserID}) {
		t.Fatalf("handed over %v, want the account", fin.ids)
	}
	_, err = svc.Authenticate(ctx, bearer(g.SessionToken))
	expect(t, err, ovrlrd.EUNAUTHORIZED, "Invalid or expired token")
	err = r.store.PutDevice(ctx, ovrlrd.Device{UserID: p.UserID, Token: strings.Repeat("ab", 32), Environment: ovrlrd.EnvSandbox})
	expect(t, err, ovrlrd.EUNAUTHORIZED, "Invalid or expired token")
	if _, err := r.store.User(ctx, p.UserID); !errors.Is(err, store.ErrAccountDeleted) {
		t.Fatalf("before the finish: %v, want the account being deleted", err)
	}
	err = svc.DeleteAccount(ctx, p, client)
	expect(t, err, ovrlrd.EUNAUTHORIZED, "Invalid or expired token")

	for range 2 {
		if err := svc.FinishDeletion(ctx, p.UserID); err != nil {
			t.Fatal(err)
		}
	}
	_, err = r.store.User(ctx, p.UserID)
	expect(t, err, ovrlrd.ENOTFOUND, "User not found.")
}

// A finisher that cannot take the deletion leaves it to the request.
func TestDeleteAccountFinishesWhatItCannotHandOver(t *testing.T) {
	r := newRig(t, open)
	ctx := context.Background()
	svc := r.withFinisher(&handOver{refuse: errors.New("invoke failed")})
	g := r.signIn(uniq("017"), "")
	p, err := svc.Authenticate(ctx, bearer(g.SessionToken))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteAccount(ctx, p, client); err != nil {
		t.Fatal(err)
	}
	_, err = r.store.User(ctx, p.UserID)
	expect(t, err, ovrlrd.ENOTFOUND, "User not found.")
}

// The finish's event names a user: it must never delete an open account.
func TestFinishDeletionRefusesAnOpenAccount(t *testing.T) {
	r := newRig(t, open)
	ctx := context.Background()
	g := r.signIn(uniq("018"), "")
	err := r.svc.FinishDeletion(ctx, g.UserID)
	expect(t, err, ovrlrd.EINVALID, "The account is not being deleted.")
	if _, err := r.svc.Authenticate(ctx, bearer(g.SessionToken)); err != nil {
		t.Fatalf("the account after a refused finish: %v", err)
	}
}

// A finish that stopped after the table was done, in the cleaners (S3), is
// completed by the next run: the cleaners run again.
func TestFinishDeletionRetriesTheCleaners(t *testing.T) {
	r := newRig(t, open)
	ctx := context.Background()
	var calls []string
	cleaner := func(_ context.Context, userID string, _ []string) error {
		calls = append(calls, userID)
		if len(calls) == 1 {
			return ovrlrd.Errorf(ovrlrd.EUNAVAILABLE, "S3 is down")
		}
		return nil
	}
	svc := r.withFinisher(&handOver{}, cleaner)
	g := r.signIn(uniq("019"), "")
	p, err := svc.Authenticate(ctx, bearer(g.SessionToken))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteAccount(ctx, p, client); err != nil {
		t.Fatal(err)
	}
	expect(t, svc.FinishDeletion(ctx, p.UserID), ovrlrd.EUNAVAILABLE, "S3 is down")
	_, err = r.store.User(ctx, p.UserID)
	expect(t, err, ovrlrd.ENOTFOUND, "User not found.")
	if err := svc.FinishDeletion(ctx, p.UserID); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(calls, []string{p.UserID, p.UserID}) {
		t.Fatalf("cleaner calls %v, want two for the account", calls)
	}
}
