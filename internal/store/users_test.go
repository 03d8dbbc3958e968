package store_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

func TestCreateUserAndLookUp(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 2, 1, 10, 0, 0, 0, time.UTC)
	r := newConvRig(t, func() time.Time { return at })
	sub := "001234." + uuid.NewString()
	r.calls.Take()
	u, err := r.CreateUser(r.ctx, "Someone@Example.com", sub)
	if err != nil {
		t.Fatal(err)
	}
	r.expectCalls("CreateUser", map[string]int{"TransactWriteItems": 1})
	if u.AppleSub != sub || u.Email != "Someone@Example.com" || !u.CreatedAt.Equal(at) || !u.UpdatedAt.Equal(at) {
		t.Fatalf("created %+v", u)
	}
	if p, err := uuid.Parse(u.ID); err != nil || p.Version() != 4 || p.String() != u.ID {
		t.Fatalf("user id %q is not a lowercase UUID v4", u.ID)
	}
	byID, err := r.User(r.ctx, u.ID)
	if err != nil || byID != u {
		t.Fatalf("User = %+v, %v; want %+v", byID, err, u)
	}
	bySub, err := r.UserByAppleSub(r.ctx, sub)
	if err != nil || bySub != u {
		t.Fatalf("UserByAppleSub = %+v, %v; want %+v", bySub, err, u)
	}
}

func TestUserNotFound(t *testing.T) {
	t.Parallel()
	r := newConvRig(t, nil)
	for _, id := range []string{"", "x", uuid.NewString(), strings.ToUpper(uuid.NewString())} {
		_, err := r.User(r.ctx, id)
		r.wantCode("User("+id+")", err, ovrlrd.ENOTFOUND)
	}
	for _, sub := range []string{"", "never-registered." + uuid.NewString(), strings.Repeat("s", 300)} {
		_, err := r.UserByAppleSub(r.ctx, sub)
		r.wantCode("UserByAppleSub", err, ovrlrd.ENOTFOUND)
	}
	_, err := r.CreateUser(r.ctx, "", "")
	r.wantCode("CreateUser without sub", err, ovrlrd.EINVALID)
}

// profilesWithSub counts profiles claiming sub, scanning around the store.
func (r convRig) profilesWithSub(sub string) int {
	r.t.Helper()
	n, err := storetest.DB().Table(storetest.TableName()).Scan().
		Filter("SK = ? AND appleSub = ?", "PROFILE", sub).Consistent(true).Count(r.ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	return n
}

func TestCreateUserWithTakenSubWritesNothing(t *testing.T) {
	t.Parallel()
	r := newConvRig(t, nil)
	sub := "taken." + uuid.NewString()
	first, err := r.CreateUser(r.ctx, "a@example.com", sub)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.CreateUser(r.ctx, "b@example.com", sub)
	r.wantCode("second CreateUser", err, ovrlrd.ECONFLICT)
	if n := r.profilesWithSub(sub); n != 1 {
		t.Fatalf("%d profiles claim the sub, want 1", n)
	}
	if u, err := r.UserByAppleSub(r.ctx, sub); err != nil || u != first {
		t.Fatalf("UserByAppleSub = %+v, %v; want the first user", u, err)
	}
}

func TestConcurrentCreateUserSameSub(t *testing.T) {
	t.Parallel()
	r := newConvRig(t, nil)
	sub := "race." + uuid.NewString()
	const n = 10
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		created  []string
		conflict int
	)
	for range n {
		wg.Go(func() {
			u, err := r.CreateUser(r.ctx, "", sub)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				created = append(created, u.ID)
			case ovrlrd.IsCode(err, ovrlrd.ECONFLICT):
				conflict++
			default:
				t.Errorf("CreateUser: %v", err)
			}
		})
	}
	wg.Wait()
	if len(created) != 1 || conflict != n-1 {
		t.Fatalf("%d created, %d conflicts; want 1 and %d", len(created), conflict, n-1)
	}
	if got := r.profilesWithSub(sub); got != 1 {
		t.Fatalf("%d profiles claim the sub, want 1", got)
	}
	if u, err := r.UserByAppleSub(r.ctx, sub); err != nil || u.ID != created[0] {
		t.Fatalf("UserByAppleSub = %+v, %v; want %s", u, err, created[0])
	}
}
