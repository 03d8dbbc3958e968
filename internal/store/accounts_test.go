package store_test

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// account is what a test stored for one user, to look for afterwards.
type account struct {
	user     ovrlrd.User
	convs    []string
	sessions []string
	devices  []string
}

// stored lists the keys of every item the table holds for a, found by a
// Scan around the store: the account's partitions, the Apple claim, its
// conversations' partitions, and any item naming the user outside the
// audit trail. A leftover the store's own reads would skip still shows.
// The tombstone of a deleted profile is not listed; tombstoneOf checks it
// holds nothing else.
func (r convRig) stored(a account) []string {
	r.t.Helper()
	var items []struct {
		PK     string `dynamo:"PK"`
		SK     string `dynamo:"SK"`
		UserID string `dynamo:"userId"`
		GSI1PK string `dynamo:"GSI1PK"`
		TTL    int64  `dynamo:"ttl"`
	}
	err := storetest.DB().Table(storetest.TableName()).Scan().Consistent(true).All(r.ctx, &items)
	if err != nil {
		r.t.Fatalf("scan: %v", err)
	}
	mine := map[string]bool{"USER#" + a.user.ID: true, "APPLE#" + a.user.AppleSub: true}
	for _, c := range a.convs {
		mine["CONV#"+c] = true
	}
	var found []string
	for _, it := range items {
		if it.PK == "USER#"+a.user.ID && it.SK == "PROFILE" && it.TTL != 0 {
			r.tombstoneOf(a.user.ID)
			continue
		}
		if mine[it.PK] || it.GSI1PK == "CONVS#"+a.user.ID ||
			(it.UserID == a.user.ID && !strings.HasPrefix(it.PK, "AUDIT#")) {
			found = append(found, it.PK+" "+it.SK)
		}
	}
	slices.Sort(found)
	return found
}

// tombstoneOf fails unless userID's profile is a tombstone: the deletion's
// time and its expiry, no personal data.
func (r convRig) tombstoneOf(userID string) {
	r.t.Helper()
	var raw map[string]any
	err := storetest.DB().Table(storetest.TableName()).Get("PK", "USER#"+userID).Range("SK", dynamo.Equal, "PROFILE").
		Consistent(true).One(r.ctx, &raw)
	if err != nil {
		r.t.Fatalf("tombstone of %s: %v", userID, err)
	}
	keys := slices.Sorted(maps.Keys(raw))
	if !slices.Equal(keys, []string{"PK", "SK", "deletedAt", "ttl"}) {
		r.t.Fatalf("tombstone attributes %v, want only the key, deletedAt and ttl", keys)
	}
	if ttl := time.Unix(int64(raw["ttl"].(float64)), 0); ttl.Before(time.Now()) || ttl.After(time.Now().Add(48*time.Hour)) {
		r.t.Fatalf("tombstone expires %v", ttl)
	}
}

// seedAccount creates a user with convs conversations, the first holding
// firstMessages messages and a run lease, the others one message each,
// plus sessions sessions and devices devices.
func (r convRig) seedAccount(convs, firstMessages, sessions, devices int) account {
	r.t.Helper()
	u, err := r.CreateUser(r.ctx, "Someone@Example.com", "001234."+uuid.NewString())
	if err != nil {
		r.t.Fatalf("CreateUser: %v", err)
	}
	a := account{user: u}
	for i := range convs {
		c := r.conv(u.ID)
		a.convs = append(a.convs, c.ID)
		n := 1
		if i == 0 {
			n = firstMessages
			if err := storetest.HoldRun(r.ctx, c.ID, "holder-"+c.ID, time.Now(), time.Hour); err != nil {
				r.t.Fatalf("HoldRun: %v", err)
			}
		}
		for j := range n {
			r.append(u.ID, c.ID, "message "+strings.Repeat("x", j))
		}
	}
	for range sessions {
		sess, err := r.CreateSession(r.ctx, u, u.Email, time.Hour)
		if err != nil {
			r.t.Fatalf("CreateSession: %v", err)
		}
		a.sessions = append(a.sessions, sess.ID)
	}
	for range devices {
		tok := strings.ReplaceAll(uuid.NewString()+uuid.NewString(), "-", "")
		if err := r.PutDevice(r.ctx, ovrlrd.Device{UserID: u.ID, Token: tok, Environment: ovrlrd.EnvProduction}); err != nil {
			r.t.Fatalf("PutDevice: %v", err)
		}
		a.devices = append(a.devices, tok)
	}
	return a
}

func TestDeleteUser(t *testing.T) {
	t.Parallel()
	r := newConvRig(t, nil)
	ctx := r.ctx
	gone := r.seedAccount(3, 30, 2, 2)
	kept := r.seedAccount(1, 3, 1, 1)
	// An item of a kind added later still goes with the account.
	err := storetest.DB().Table(storetest.TableName()).
		Put(convItemKey{PK: "USER#" + gone.user.ID, SK: "SOMETHING#LATER"}).Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The security trail stays.
	if err := r.PutAudit(ctx, ovrlrd.AuditEvent{Action: "auth.login", UserID: gone.user.ID}, time.Hour); err != nil {
		t.Fatal(err)
	}
	// 1 profile, 3 conversations, 2 sessions, 2 devices and their 2 token
	// claims, 1 extra, 1 Apple claim, 30+1+1 messages and 1 run lease.
	if n := len(r.stored(gone)); n != 45 {
		t.Fatalf("seeded %d items, want 45", n)
	}
	keptBefore := r.stored(kept)

	r.calls.Take()
	deleted, err := r.DeleteUser(ctx, gone.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	calls := r.calls.Take()
	if calls["Scan"] != 0 || calls["BatchWriteItem"] < 3 {
		t.Fatalf("DynamoDB calls %v: want batched deletes and no Scan", calls)
	}
	slices.Sort(deleted)
	want := slices.Clone(gone.convs)
	slices.Sort(want)
	if !slices.Equal(deleted, want) {
		t.Fatalf("deleted conversations %v, want %v", deleted, want)
	}
	if left := r.stored(gone); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
	if after := r.stored(kept); !slices.Equal(after, keptBefore) {
		t.Fatalf("another user's items changed:\n%v\nto\n%v", keptBefore, after)
	}

	// Through the store's eyes too.
	_, err = r.User(ctx, gone.user.ID)
	r.wantCode("User", err, ovrlrd.ENOTFOUND)
	_, err = r.UserByAppleSub(ctx, gone.user.AppleSub)
	r.wantCode("UserByAppleSub", err, ovrlrd.ENOTFOUND)
	for _, sid := range gone.sessions {
		_, err := r.Session(ctx, gone.user.ID, sid)
		r.wantCode("Session", err, ovrlrd.ENOTFOUND)
	}
	if d, err := r.Devices(ctx, gone.user.ID); err != nil || len(d) != 0 {
		t.Fatalf("Devices = %v, %v; want none", d, err)
	}
	if list, _, err := r.ListConversations(ctx, gone.user.ID, ovrlrd.Page{Limit: 10}); err != nil || len(list) != 0 {
		t.Fatalf("ListConversations = %v, %v; want none", list, err)
	}
	if _, err := r.Run(ctx, gone.convs[0]); !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
		t.Fatalf("the run lease survived: %v", err)
	}
	if ev, err := storetest.AuditEvents(ctx, gone.user.ID, 10); err != nil || len(ev) != 1 {
		t.Fatalf("audit events = %v, %v; want the one kept", ev, err)
	}
	if msgs, _, err := r.Messages(ctx, kept.convs[0], ovrlrd.Page{Limit: 10}); err != nil || len(msgs) != 3 {
		t.Fatalf("another user's messages = %d, %v; want 3", len(msgs), err)
	}
	if _, err := r.Session(ctx, kept.user.ID, kept.sessions[0]); err != nil {
		t.Fatalf("another user's session: %v", err)
	}

	// The same Apple account signs up again, as a new user.
	again, err := r.CreateUser(ctx, "Someone@Example.com", gone.user.AppleSub)
	if err != nil {
		t.Fatalf("sign up again: %v", err)
	}
	if again.ID == gone.user.ID {
		t.Fatal("the new account reuses the deleted user's id")
	}
	if u, err := r.UserByAppleSub(ctx, gone.user.AppleSub); err != nil || u.ID != again.ID {
		t.Fatalf("UserByAppleSub = %+v, %v; want the new user", u, err)
	}

	// Deleting again: the user no longer exists, and the new account with
	// the same Apple subject is not touched.
	ids, err := r.DeleteUser(ctx, gone.user.ID)
	r.wantCode("second DeleteUser", err, ovrlrd.ENOTFOUND)
	if len(ids) != 0 {
		t.Fatalf("second DeleteUser reported conversations %v", ids)
	}
	if _, err := r.User(ctx, again.ID); err != nil {
		t.Fatalf("the new account: %v", err)
	}
}

func TestDeleteUserNotFound(t *testing.T) {
	t.Parallel()
	r := newConvRig(t, nil)
	for _, id := range []string{"", "x", uuid.NewString(), strings.ToUpper(uuid.NewString())} {
		ids, err := r.DeleteUser(r.ctx, id)
		r.wantCode("DeleteUser("+id+")", err, ovrlrd.ENOTFOUND)
		if ids != nil {
			t.Fatalf("DeleteUser(%q) reported %v", id, ids)
		}
	}
}

// A deletion that stopped half way, its profile still there, is finished by
// the next call.
func TestDeleteUserFinishesHalfDoneDeletion(t *testing.T) {
	t.Parallel()
	r := newConvRig(t, nil)
	ctx := r.ctx
	a := r.seedAccount(3, 30, 2, 2)
	// What a first attempt may have done before it stopped: sessions gone,
	// one conversation gone, another's messages swept but the conversation
	// itself still there.
	for _, sid := range a.sessions {
		err := storetest.DB().Table(storetest.TableName()).Delete("PK", "USER#"+a.user.ID).Range("SK", "SESSION#"+sid).Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := r.DeleteConversation(ctx, a.user.ID, a.convs[0]); err != nil {
		t.Fatal(err)
	}
	for _, k := range r.partition("CONV#" + a.convs[1]) {
		if err := storetest.DB().Table(storetest.TableName()).Delete("PK", k.PK).Range("SK", k.SK).Run(ctx); err != nil {
			t.Fatal(err)
		}
	}

	deleted, err := r.DeleteUser(ctx, a.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(deleted)
	want := slices.Clone(a.convs[1:])
	slices.Sort(want)
	if !slices.Equal(deleted, want) {
		t.Fatalf("deleted conversations %v, want %v", deleted, want)
	}
	if left := r.stored(a); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
	_, err = r.DeleteUser(ctx, a.user.ID)
	r.wantCode("second DeleteUser", err, ovrlrd.ENOTFOUND)
}

func TestDeleteUserConcurrent(t *testing.T) {
	t.Parallel()
	r := newConvRig(t, nil)
	a := r.seedAccount(2, 30, 2, 1)
	const n = 4
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, errs[i] = r.DeleteUser(r.ctx, a.user.ID) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND):
			t.Fatalf("DeleteUser: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d deletions succeeded, want exactly 1 (errors %v)", ok, errs)
	}
	if left := r.stored(a); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
}

// A claim on the subject that another user holds (never made by the store,
// but possible after a manual repair) is left alone.
func TestDeleteUserKeepsAnotherUsersClaim(t *testing.T) {
	t.Parallel()
	r := newConvRig(t, nil)
	ctx := r.ctx
	a := r.seedAccount(0, 0, 1, 0)
	other := uuid.NewString()
	claim := struct {
		PK     string `dynamo:"PK"`
		SK     string `dynamo:"SK"`
		UserID string `dynamo:"userId"`
	}{"APPLE#" + a.user.AppleSub, "APPLE", other}
	if err := storetest.DB().Table(storetest.TableName()).Put(claim).Run(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.DeleteUser(ctx, a.user.ID); err != nil {
		t.Fatal(err)
	}
	if keys := r.partition("USER#" + a.user.ID); len(keys) != 1 || keys[0].SK != "PROFILE" {
		t.Fatalf("left behind: %v", keys)
	}
	r.tombstoneOf(a.user.ID)
	if keys := r.partition("APPLE#" + a.user.AppleSub); len(keys) != 1 {
		t.Fatalf("the other user's claim: %v, want kept", keys)
	}
}
