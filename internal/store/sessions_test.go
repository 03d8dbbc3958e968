package store_test

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/store"
)

// stepClock is a clock tests move by hand. It starts in the real future so
// DynamoDB Local's TTL sweeper never deletes an item a test still reads.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func newStepClock() *stepClock {
	return &stepClock{t: time.Now().Add(time.Hour).Truncate(time.Minute).UTC()}
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *stepClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func clockedStore(c *stepClock) *store.Store {
	return store.New(storetest.DB(), store.Options{
		Table: storetest.TableName(), CursorKey: []byte("test-cursor-key-0123456789abcdef"), Now: c.Now,
	})
}

// rawGet reads an item as stored, to check attributes the API hides.
func rawGet(t *testing.T, pk, sk string, out any) {
	t.Helper()
	err := storetest.DB().Table(storetest.TableName()).Get("PK", pk).Range("SK", dynamo.Equal, sk).
		Consistent(true).One(context.Background(), out)
	if err != nil {
		t.Fatalf("raw get %s/%s: %v", pk, sk, err)
	}
}

func expectCode(t *testing.T, err error, code string) {
	t.Helper()
	if !ovrlrd.IsCode(err, code) {
		t.Fatalf("got error %v, want code %s", err, code)
	}
}

// sessionUser is the user a session test signs in: a profile is not needed,
// only the identity the session copies.
func sessionUser(uid string) ovrlrd.User {
	return ovrlrd.User{ID: uid, AppleSub: "001234." + uid, Email: verifiedEmail}
}

// verifiedEmail is the address Apple verified at a test's sign-in.
const verifiedEmail = "Someone@Example.com"

func TestCreateAndGetSession(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newStepClock()
	s := clockedStore(clock)
	uid := rand.Text()

	created, err := s.CreateSession(ctx, sessionUser(uid), verifiedEmail, 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	want := ovrlrd.LoginSession{
		ID: created.ID, UserID: uid, Email: "Someone@Example.com", AppleSub: "001234." + uid, Generation: 1,
		CreatedAt: clock.Now(), ExpiresAt: clock.Now().Add(30 * 24 * time.Hour),
	}
	if created.ID == "" || created != want {
		t.Fatalf("created %+v, want %+v", created, want)
	}
	got, err := s.Session(ctx, uid, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}

	var raw struct {
		TTL int64 `dynamo:"ttl"`
	}
	rawGet(t, "USER#"+uid, "SESSION#"+created.ID, &raw)
	if ttl := time.Unix(raw.TTL, 0); !ttl.After(want.ExpiresAt) || ttl.After(want.ExpiresAt.Add(7*24*time.Hour)) {
		t.Fatalf("ttl %v, want a few days after %v", ttl, want.ExpiresAt)
	}

	other, err := s.CreateSession(ctx, sessionUser(uid), verifiedEmail, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if other.ID == created.ID {
		t.Fatal("two sessions share an id")
	}
	_, err = s.Session(ctx, rand.Text(), created.ID)
	expectCode(t, err, ovrlrd.ENOTFOUND)
	_, err = s.Session(ctx, uid, rand.Text())
	expectCode(t, err, ovrlrd.ENOTFOUND)
}

func TestCreateSessionKeepsIdentity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	uid := rand.Text()

	// Apple sends no email after the first sign-in, or none at all.
	noEmail := sessionUser(uid)
	noEmail.Email = ""
	sess, err := s.CreateSession(ctx, noEmail, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Session(ctx, uid, sess.ID)
	if err != nil || got.Email != "" || got.AppleSub != noEmail.AppleSub || got != sess {
		t.Fatalf("got %+v, %v; want %+v", got, err, sess)
	}
	rotated, err := s.RotateSession(ctx, uid, sess.ID, 1, time.Hour)
	if err != nil || rotated.AppleSub != noEmail.AppleSub || rotated.Email != "" {
		t.Fatalf("rotated %+v, %v; want the Apple subject kept", rotated, err)
	}

	for name, u := range map[string]ovrlrd.User{
		"no user id":       {AppleSub: "001234.x", Email: "a@example.com"},
		"no apple subject": {ID: uid, Email: "a@example.com"},
	} {
		_, err := s.CreateSession(ctx, u, u.Email, time.Hour)
		if !ovrlrd.IsCode(err, ovrlrd.EINVALID) {
			t.Fatalf("%s: got %v, want EINVALID", name, err)
		}
	}
	_, err = s.CreateSession(ctx, sessionUser(uid), verifiedEmail, 0)
	expectCode(t, err, ovrlrd.EINVALID)
}

func TestRotateSession(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newStepClock()
	s := clockedStore(clock)
	uid := rand.Text()
	sess, err := s.CreateSession(ctx, sessionUser(uid), verifiedEmail, time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	clock.Advance(10 * time.Minute)
	rotated, err := s.RotateSession(ctx, uid, sess.ID, 1, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	want := sess
	want.Generation, want.PreviousGeneration = 2, 1
	want.RotatedAt, want.ExpiresAt = clock.Now(), clock.Now().Add(2*time.Hour)
	if rotated != want || rotated.Email != "Someone@Example.com" || rotated.AppleSub != "001234."+uid {
		t.Fatalf("rotated %+v, want %+v", rotated, want)
	}
	if got, err := s.Session(ctx, uid, sess.ID); err != nil || got != want {
		t.Fatalf("after rotation got %+v, %v; want %+v", got, err, want)
	}

	_, err = s.RotateSession(ctx, uid, sess.ID, 1, time.Hour)
	expectCode(t, err, ovrlrd.ECONFLICT)
	_, err = s.RotateSession(ctx, uid, sess.ID, 3, time.Hour)
	expectCode(t, err, ovrlrd.ECONFLICT)
	if got, _ := s.Session(ctx, uid, sess.ID); got.Generation != 2 {
		t.Fatalf("a failed rotation changed the generation to %d", got.Generation)
	}
	if _, err := s.RotateSession(ctx, uid, sess.ID, 2, time.Hour); err != nil {
		t.Fatalf("rotating from the current generation: %v", err)
	}
}

func TestRotateSessionConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	uid := rand.Text()
	sess, err := s.CreateSession(ctx, sessionUser(uid), verifiedEmail, time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, errs[i] = s.RotateSession(ctx, uid, sess.ID, 1, time.Hour) })
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !ovrlrd.IsCode(err, ovrlrd.ECONFLICT):
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d rotations won, want exactly 1", wins)
	}
	if got, _ := s.Session(ctx, uid, sess.ID); got.Generation != 2 {
		t.Fatalf("generation %d, want 2", got.Generation)
	}
}

func TestRotateSessionGoneOrExpired(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newStepClock()
	s := clockedStore(clock)
	uid := rand.Text()

	_, err := s.RotateSession(ctx, uid, rand.Text(), 1, time.Hour)
	expectCode(t, err, ovrlrd.ENOTFOUND)

	sess, err := s.CreateSession(ctx, sessionUser(uid), verifiedEmail, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour + time.Second)
	_, err = s.Session(ctx, uid, sess.ID)
	expectCode(t, err, ovrlrd.ENOTFOUND)
	_, err = s.RotateSession(ctx, uid, sess.ID, 1, time.Hour)
	expectCode(t, err, ovrlrd.ENOTFOUND)
}

func TestRevokedSessionCannotRotate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	uid := rand.Text()
	sess, err := s.CreateSession(ctx, sessionUser(uid), verifiedEmail, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeSession(ctx, uid, sess.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeSession(ctx, uid, sess.ID); err != nil {
		t.Fatalf("revoking twice: %v", err)
	}
	if err := s.RevokeSession(ctx, uid, rand.Text()); err != nil {
		t.Fatalf("revoking an unknown session: %v", err)
	}
	got, err := s.Session(ctx, uid, sess.ID)
	if err != nil || !got.Revoked || got.Generation != 1 {
		t.Fatalf("after revoke got %+v, %v", got, err)
	}
	_, err = s.RotateSession(ctx, uid, sess.ID, 1, time.Hour)
	expectCode(t, err, ovrlrd.ECONFLICT)
}

// A session keeps only the address Apple verified; one written before that
// rule, with the profile's e-mail (verified or not) under "email", gets no
// e-mail at all, so an unverified address never satisfies the allow-list.
func TestSessionEmailIsOnlyAVerifiedOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	uid := rand.Text()
	unverified := sessionUser(uid)
	unverified.Email = "boss@example.com" // the profile's, as Apple sent it
	sess, err := s.CreateSession(ctx, unverified, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Session(ctx, uid, sess.ID); err != nil || got.Email != "" || sess.Email != "" {
		t.Fatalf("session e-mail %q (%q), %v; want none", got.Email, sess.Email, err)
	}

	legacy := map[string]any{
		"PK": "USER#" + uid, "SK": "SESSION#legacy", "email": "boss@example.com", "appleSub": unverified.AppleSub,
		"generation": 1, "previousGeneration": 0, "revoked": false,
		"createdAt": time.Now().UnixMilli(), "expiresAt": time.Now().Add(time.Hour).UnixMilli(),
		"ttl": time.Now().Add(time.Hour).Unix(),
	}
	if err := storetest.DB().Table(storetest.TableName()).Put(legacy).Run(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := s.Session(ctx, uid, "legacy")
	if err != nil || got.Email != "" || got.AppleSub != unverified.AppleSub {
		t.Fatalf("legacy session %+v, %v; want its e-mail ignored", got, err)
	}
	rotated, err := s.RotateSession(ctx, uid, "legacy", 1, time.Hour)
	if err != nil || rotated.Email != "" {
		t.Fatalf("rotated legacy session %+v, %v; want its e-mail ignored", rotated, err)
	}
}
