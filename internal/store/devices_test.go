package store_test

import (
	"context"
	"crypto/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

func TestDevices(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newStepClock()
	s := clockedStore(clock)
	uid := rand.Text()
	tokA, tokB := strings.ToLower(rand.Text()), strings.ToLower(rand.Text())

	for _, d := range []ovrlrd.Device{
		{UserID: uid, Token: tokA, Environment: ovrlrd.EnvSandbox},
		{UserID: uid, Token: tokB, Environment: ovrlrd.EnvProduction},
	} {
		if err := s.PutDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	first := clock.Now()

	clock.Advance(time.Minute)
	if err := s.PutDevice(ctx, ovrlrd.Device{UserID: uid, Token: tokA, Environment: ovrlrd.EnvProduction}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Devices(ctx, uid)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(a, b ovrlrd.Device) int { return strings.Compare(a.Token, b.Token) })
	want := []ovrlrd.Device{
		{UserID: uid, Token: tokA, Environment: ovrlrd.EnvProduction, UpdatedAt: clock.Now()},
		{UserID: uid, Token: tokB, Environment: ovrlrd.EnvProduction, UpdatedAt: first},
	}
	slices.SortFunc(want, func(a, b ovrlrd.Device) int { return strings.Compare(a.Token, b.Token) })
	if !slices.Equal(got, want) {
		t.Fatalf("devices\n got %+v\nwant %+v", got, want)
	}

	if err := s.DeleteDevice(ctx, uid, tokA); err != nil {
		t.Fatal(err)
	}
	expectCode(t, s.DeleteDevice(ctx, uid, tokA), ovrlrd.ENOTFOUND)
	if got, err := s.Devices(ctx, uid); err != nil || len(got) != 1 || got[0].Token != tokB {
		t.Fatalf("after delete got %+v, %v", got, err)
	}
}

func TestDevicesOfAnotherUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	owner, stranger := rand.Text(), rand.Text()
	tok := strings.ToLower(rand.Text())
	if err := s.PutDevice(ctx, ovrlrd.Device{UserID: owner, Token: tok, Environment: ovrlrd.EnvSandbox}); err != nil {
		t.Fatal(err)
	}

	got, err := s.Devices(ctx, stranger)
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("stranger's devices: %#v, %v; want empty non-nil", got, err)
	}
	expectCode(t, s.DeleteDevice(ctx, stranger, tok), ovrlrd.ENOTFOUND)
	if got, _ := s.Devices(ctx, owner); len(got) != 1 {
		t.Fatalf("a stranger's delete removed the owner's device: %+v", got)
	}

	// The same phone signed in to another account registers there too.
	if err := s.PutDevice(ctx, ovrlrd.Device{UserID: stranger, Token: tok, Environment: ovrlrd.EnvSandbox}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Devices(ctx, stranger); len(got) != 1 || got[0].UserID != stranger {
		t.Fatalf("stranger's devices after registering: %+v", got)
	}
}

func TestPutDeviceInvalid(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	err := s.PutDevice(context.Background(), ovrlrd.Device{UserID: rand.Text(), Token: "ab", Environment: "staging"})
	expectCode(t, err, ovrlrd.EINVALID)
}

// A phone belongs to one account at a time: registering its token for
// another account takes it away from the first.
func TestDeviceMovesBetweenAccounts(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	a, b := rand.Text(), rand.Text()
	tok := strings.ToLower(rand.Text())
	if err := s.PutDevice(ctx, ovrlrd.Device{UserID: a, Token: tok, Environment: ovrlrd.EnvSandbox}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutDevice(ctx, ovrlrd.Device{UserID: b, Token: tok, Environment: ovrlrd.EnvProduction}); err != nil {
		t.Fatal(err)
	}
	da, _ := s.Devices(ctx, a)
	db, _ := s.Devices(ctx, b)
	if len(da) != 0 || len(db) != 1 || db[0].Environment != ovrlrd.EnvProduction {
		t.Fatalf("after the move: a=%v b=%v", da, db)
	}
	// The old owner can no longer delete it; the new one can.
	if err := s.DeleteDevice(ctx, a, tok); !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
		t.Fatalf("old owner delete: %v", err)
	}
	if err := s.DeleteDevice(ctx, b, tok); err != nil {
		t.Fatal(err)
	}
	// Free again: anyone may register it.
	if err := s.PutDevice(ctx, ovrlrd.Device{UserID: a, Token: tok, Environment: ovrlrd.EnvSandbox}); err != nil {
		t.Fatal(err)
	}
}
