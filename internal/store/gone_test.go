package store_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/store"
)

// newFaultRig is newConvRig with a fault on op.
func newFaultRig(t *testing.T, op string, now func() time.Time) (convRig, *storetest.Fault) {
	t.Helper()
	fault := &storetest.Fault{Op: op}
	calls := &storetest.CallCounter{}
	db := store.NewDB(storetest.AWSConfig(), storetest.Endpoint(), calls.Option(), fault.Option())
	s := store.New(db, store.Options{
		Table: storetest.TableName(), CursorKey: []byte("test-cursor-key-0123456789abcdef"), Now: now,
	})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return convRig{Store: s, calls: calls, t: t, ctx: ctx}, fault
}

// halfDelete deletes convID with its purge failing: the conversation is
// gone, its messages are not.
func (r convRig) halfDelete(fault *storetest.Fault, userID, convID string) {
	r.t.Helper()
	fault.Armed.Store(true)
	err := r.DeleteConversation(r.ctx, userID, convID)
	if fault.Fired.Load() != 1 || !ovrlrd.IsCode(err, ovrlrd.EUNAVAILABLE) {
		r.t.Fatalf("delete with its purge failing: %v (faults %d)", err, fault.Fired.Load())
	}
	_, err = r.Conversation(r.ctx, userID, convID)
	r.wantNotFound("read after the half delete", err)
	if len(r.partition("CONV#"+convID)) == 0 {
		r.t.Fatal("the purge was not interrupted")
	}
}

// A delete whose purge stopped part way is finished by the owner's retry,
// which succeeds, instead of being told the conversation is not found.
func TestRetriedDeleteFinishesThePurge(t *testing.T) {
	t.Parallel()
	r, fault := newFaultRig(t, "BatchWriteItem", nil)
	uid := r.user()
	conv := r.conv(uid)
	keep := r.conv(uid)
	for i := range 30 {
		r.append(uid, conv.ID, "m"+strings.Repeat("x", i))
	}
	r.halfDelete(fault, uid, conv.ID)
	list, _, err := r.ListConversations(r.ctx, uid, ovrlrd.Page{Limit: 10})
	if err != nil || len(list) != 1 || list[0].ID != keep.ID {
		t.Fatalf("list after the half delete: %+v, %v", list, err)
	}

	if err := r.DeleteConversation(r.ctx, uid, conv.ID); err != nil {
		t.Fatalf("the retry: %v", err)
	}
	if keys := r.partition("CONV#" + conv.ID); len(keys) != 0 {
		t.Fatalf("left after the retry: %v", keys)
	}
	if list, _, err := r.ListConversations(r.ctx, uid, ovrlrd.Page{Limit: 10}); err != nil || len(list) != 1 {
		t.Fatalf("list after the retry: %+v, %v", list, err)
	}
}

// A deleted conversation's tombstone is its owner's alone: another user's
// delete of the same id is "not found" and purges nothing; the owner's
// finishes it.
func TestAnotherUsersDeletedConversationIsNotFound(t *testing.T) {
	t.Parallel()
	r, fault := newFaultRig(t, "BatchWriteItem", nil)
	alice, bob := r.user(), r.user()
	conv := r.conv(alice)
	for range 5 {
		r.append(alice, conv.ID, "alice's")
	}
	r.halfDelete(fault, alice, conv.ID)
	left := r.partition("CONV#" + conv.ID)

	r.wantNotFound("bob deletes alice's deleted conversation", r.DeleteConversation(r.ctx, bob, conv.ID))
	if after := r.partition("CONV#" + conv.ID); !slices.Equal(after, left) {
		t.Fatalf("bob's delete purged alice's partition: %v to %v", left, after)
	}
	if keys := r.partition("USER#" + bob); len(keys) != 1 || keys[0].SK != "PROFILE" {
		t.Fatalf("bob's delete wrote %v", keys)
	}
	if err := r.DeleteConversation(r.ctx, alice, conv.ID); err != nil {
		t.Fatalf("alice's retry: %v", err)
	}
	if keys := r.partition("CONV#" + conv.ID); len(keys) != 0 {
		t.Fatalf("left after alice's retry: %v", keys)
	}
}

// The tombstone lasts a week: a retry after that is "not found", as a
// delete of a conversation that never existed.
func TestDeletedConversationTombstoneExpires(t *testing.T) {
	t.Parallel()
	clk := newConvClock(time.Now())
	r := newConvRig(t, clk.Now)
	uid := r.user()
	conv := r.conv(uid)
	if err := r.DeleteConversation(r.ctx, uid, conv.ID); err != nil {
		t.Fatal(err)
	}
	clk.Advance(6 * 24 * time.Hour)
	if err := r.DeleteConversation(r.ctx, uid, conv.ID); err != nil {
		t.Fatalf("a retry within the week: %v", err)
	}
	clk.Advance(2 * 24 * time.Hour)
	r.wantNotFound("a retry after the week", r.DeleteConversation(r.ctx, uid, conv.ID))
}

// An account deleted while one of its conversations was half deleted loses
// that conversation's messages and tombstone too.
func TestDeleteUserFinishesHalfDeletedConversations(t *testing.T) {
	t.Parallel()
	r, fault := newFaultRig(t, "BatchWriteItem", nil)
	a := r.seedAccount(2, 10, 1, 0)
	r.halfDelete(fault, a.user.ID, a.convs[0])

	deleted, err := r.DeleteUser(r.ctx, a.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(deleted, a.convs[1:]) {
		t.Fatalf("deleted conversations %v, want %v", deleted, a.convs[1:])
	}
	if left := r.stored(a); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
}

// Beginning an account's deletion refuses its writes at once and only
// once; DeleteUser then finishes it.
func TestBeginDeleteUser(t *testing.T) {
	t.Parallel()
	r := newConvRig(t, nil)
	a := r.seedAccount(1, 3, 2, 0)
	if err := r.BeginDeleteUser(r.ctx, a.user.ID); err != nil {
		t.Fatal(err)
	}
	_, err := r.AppendMessage(r.ctx, a.user.ID, a.convs[0], ovrlrd.RoleSystem, "late")
	r.refusedAsRevoked("append", err)
	_, err = r.User(r.ctx, a.user.ID)
	r.refusedAsRevoked("User", err)
	r.wantCode("begin again", r.BeginDeleteUser(r.ctx, a.user.ID), ovrlrd.ENOTFOUND)

	if err := r.DeleteSessions(r.ctx, a.user.ID); err != nil {
		t.Fatal(err)
	}
	for _, sid := range a.sessions {
		_, err := r.Session(r.ctx, a.user.ID, sid)
		r.wantCode("Session", err, ovrlrd.ENOTFOUND)
	}
	if _, err := r.DeleteUser(r.ctx, a.user.ID); err != nil {
		t.Fatalf("finishing: %v", err)
	}
	if left := r.stored(a); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
	r.wantCode("begin after the end", r.BeginDeleteUser(r.ctx, a.user.ID), ovrlrd.ENOTFOUND)
	for _, id := range []string{"", "x", strings.ToUpper(a.user.ID)} {
		r.calls.Take()
		r.wantCode("begin "+id, r.BeginDeleteUser(r.ctx, id), ovrlrd.ENOTFOUND)
		r.expectCalls("malformed id", map[string]int{})
	}
}
