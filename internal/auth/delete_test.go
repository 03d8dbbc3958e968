package auth_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/auth"
	"github.com/ovrlrd/cloud/internal/devkit/applefake"
	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// After a deletion, another instance may still trust the session it cached
// (reads, for at most the check interval), but the account is gone for
// writes: its sign-in device and a second deletion are answered as a
// revoked session is.
func TestDeletedAccountOnAnotherInstance(t *testing.T) {
	r := newRig(t, open)
	ctx := context.Background()
	other := r.instance(open)
	g := r.signIn(uniq("014"), "")
	p, err := other.Authenticate(ctx, bearer(g.SessionToken))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.svc.DeleteAccount(ctx, p, client); err != nil {
		t.Fatal(err)
	}
	cached, err := other.Authenticate(ctx, bearer(g.SessionToken))
	if err != nil {
		t.Fatalf("the other instance's cached session: %v", err)
	}
	err = other.DeleteAccount(ctx, cached, client)
	expect(t, err, ovrlrd.EUNAUTHORIZED, "Invalid or expired token")
	err = r.store.PutDevice(ctx, ovrlrd.Device{UserID: p.UserID, Token: strings.Repeat("cd", 32), Environment: ovrlrd.EnvSandbox})
	expect(t, err, ovrlrd.EUNAUTHORIZED, "Invalid or expired token")
	r.clock.advance(r.opts.CheckInterval)
	_, err = other.Authenticate(ctx, bearer(g.SessionToken))
	expect(t, err, ovrlrd.EUNAUTHORIZED, "Invalid or expired token")
}

// A deletion that stopped half way (its profile marked, the Apple claim
// still there) is finished by the next sign-in of the same Apple account,
// which then gets a new, empty account.
func TestSignInFinishesAnInterruptedDeletion(t *testing.T) {
	r := newRig(t, open)
	ctx := context.Background()
	sub := uniq("015")
	old := r.signIn(sub, "")
	err := storetest.DB().Table(storetest.TableName()).Update("PK", "USER#"+old.UserID).Range("SK", "PROFILE").
		Set("deletedAt", time.Now().UnixMilli()).Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dev := strings.Repeat("ef", 32)
	g, err := r.svc.SignIn(ctx, auth.SignInRequest{
		IdentityToken: r.apple.Mint(applefake.Claims{Subject: sub}), DeviceToken: &dev,
	}, client)
	if err != nil {
		t.Fatal(err)
	}
	if g.UserID == old.UserID {
		t.Fatal("signed in to the account being deleted")
	}
	if _, err := r.svc.Authenticate(ctx, bearer(old.SessionToken)); err == nil {
		t.Fatal("the deleted account's session still works")
	}
	var left []struct {
		SK string `dynamo:"SK"`
	}
	if err := storetest.DB().Table(storetest.TableName()).Get("PK", "USER#"+old.UserID).Consistent(true).All(ctx, &left); err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].SK != "PROFILE" {
		t.Fatalf("left of the old account: %+v, want its tombstone", left)
	}
	if devs, _ := r.store.Devices(ctx, g.UserID); len(devs) != 1 {
		t.Fatalf("the new account's devices: %+v", devs)
	}
}
