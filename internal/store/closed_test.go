package store_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/store"
)

// beginDeletion leaves a's profile as DeleteUser's first step leaves it, as
// if the deletion were still running on another instance.
func (r convRig) beginDeletion(a account) {
	r.t.Helper()
	err := storetest.DB().Table(storetest.TableName()).Update("PK", "USER#"+a.user.ID).Range("SK", "PROFILE").
		Set("deletedAt", time.Now().UnixMilli()).Run(r.ctx)
	if err != nil {
		r.t.Fatal(err)
	}
}

// refusedAsRevoked fails unless err is the answer a revoked session gets.
func (r convRig) refusedAsRevoked(what string, err error) {
	r.t.Helper()
	if !ovrlrd.IsCode(err, ovrlrd.EUNAUTHORIZED) || ovrlrd.ErrorMessage(err) != ovrlrd.MsgExpiredToken || !errors.Is(err, store.ErrAccountDeleted) {
		r.t.Fatalf("%s: got %v, want the revoked-session answer", what, err)
	}
}

// Once an account's deletion has begun, and after it ended, every write
// that would create data for it is refused in its own transaction, whatever
// session the caller still trusts, and writes nothing.
func TestDeletedAccountWritesNothing(t *testing.T) {
	t.Parallel()
	for _, state := range []string{"deleting", "deleted"} {
		t.Run(state, func(t *testing.T) {
			r := newConvRig(t, nil)
			a := r.seedAccount(1, 1, 1, 0)
			if state == "deleting" {
				r.beginDeletion(a)
			} else if _, err := r.DeleteUser(r.ctx, a.user.ID); err != nil {
				t.Fatal(err)
			}
			before := r.stored(a)
			convBefore := r.partition("CONV#" + a.convs[0])

			_, err := r.AppendMessage(r.ctx, a.user.ID, a.convs[0], ovrlrd.RoleSystem, "✗ Denied: Bash")
			r.refusedAsRevoked("append", err)
			_, err = r.StartTurn(r.ctx, ovrlrd.TurnStart{UserID: a.user.ID, Holder: "h1", Lease: time.Minute,
				Message: ovrlrd.NewMessage{Role: ovrlrd.RoleUser, Content: "a new conversation"}})
			r.refusedAsRevoked("start a new conversation's turn", err)
			if state == "deleting" { // once deleted, the conversation is not found first
				_, err = r.StartTurn(r.ctx, ovrlrd.TurnStart{UserID: a.user.ID, ConversationID: a.convs[0], Holder: "h2",
					Lease: time.Minute, Message: ovrlrd.NewMessage{Role: ovrlrd.RoleUser, Content: "go on"}})
				r.refusedAsRevoked("start a turn", err)
			}
			tok := strings.ReplaceAll(uuid.NewString()+uuid.NewString(), "-", "")
			r.refusedAsRevoked("register a device", r.PutDevice(r.ctx, ovrlrd.Device{UserID: a.user.ID, Token: tok, Environment: ovrlrd.EnvSandbox}))
			_, err = r.CreateSession(r.ctx, a.user, "", time.Hour)
			r.refusedAsRevoked("start a session", err)

			if after := r.stored(a); !slices.Equal(after, before) {
				t.Fatalf("items changed:\n%v\nto\n%v", before, after)
			}
			if after := r.partition("CONV#" + a.convs[0]); !slices.Equal(after, convBefore) {
				t.Fatalf("conversation partition changed:\n%v\nto\n%v", convBefore, after)
			}
			if keys := r.partition("TOKEN#" + tok); len(keys) != 0 {
				t.Fatalf("device claim written: %v", keys)
			}
			want := len(a.convs)
			if state == "deleted" {
				want = 0
			}
			if list, _, err := r.ListConversations(r.ctx, a.user.ID, ovrlrd.Page{Limit: 10}); err != nil || len(list) != want {
				t.Fatalf("conversations %v, %v; want %d", list, err, want)
			}
		})
	}
}

// A deletion that stopped half way is reported to sign-in, with the user,
// so it can be finished; the finished one is simply not found.
func TestUserOfADeletedAccount(t *testing.T) {
	t.Parallel()
	r := newConvRig(t, nil)
	a := r.seedAccount(1, 1, 1, 1)
	r.beginDeletion(a)
	u, err := r.UserByAppleSub(r.ctx, a.user.AppleSub)
	r.refusedAsRevoked("UserByAppleSub", err)
	if u.ID != a.user.ID {
		t.Fatalf("user %+v, want %s", u, a.user.ID)
	}
	if _, err := r.DeleteUser(r.ctx, a.user.ID); err != nil {
		t.Fatalf("finishing the deletion: %v", err)
	}
	if left := r.stored(a); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
	_, err = r.UserByAppleSub(r.ctx, a.user.AppleSub)
	r.wantCode("UserByAppleSub after", err, ovrlrd.ENOTFOUND)
	_, err = r.User(r.ctx, a.user.ID)
	r.wantCode("User after", err, ovrlrd.ENOTFOUND)
}
