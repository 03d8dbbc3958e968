package auth_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/apple"
	"github.com/ovrlrd/cloud/internal/audit"
	"github.com/ovrlrd/cloud/internal/auth"
	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/devkit/applefake"
	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/store"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// clock is a settable time shared by the service and the store.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

var ring = mustRing("k1:" + strings.Repeat("a", 40))

func mustRing(s string) config.KeyRing {
	r, err := config.ParseKeyRing(s)
	if err != nil {
		panic(err)
	}
	return r
}

type rig struct {
	t     *testing.T
	clock *clock
	apple *applefake.Server
	store *store.Store
	opts  auth.Options
	svc   *auth.Service
}

var client = audit.Client{IP: "192.0.2.10", UserAgent: "Ovrlrd/1.0"}

func newRig(t *testing.T, policy auth.Policy) *rig {
	t.Helper()
	fake := applefake.New()
	t.Cleanup(fake.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v, err := apple.NewVerifier(ctx, apple.Options{JWKSURL: fake.URL, Audiences: []string{applefake.Audience}})
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Now().Truncate(time.Second)}
	st := store.New(storetest.DB(), store.Options{Table: storetest.TableName(), CursorKey: []byte("k"), Now: c.now})
	log := slog.New(slog.DiscardHandler)
	r := &rig{t: t, clock: c, apple: fake, store: st}
	r.opts = auth.Options{
		Store: st, Apple: v, Tokens: auth.NewIssuer(ring), Policy: policy,
		Audit: audit.New(st, time.Hour, []byte("ip"), log), Log: log,
		TTL: 24 * time.Hour, RefreshGrace: 4 * time.Hour, CheckInterval: 30 * time.Second,
		DeviceEnv: ovrlrd.EnvSandbox, Now: c.now,
	}
	r.svc = auth.New(r.opts)
	return r
}

// instance returns another instance of the service over the same table, as
// a second Lambda execution environment would be.
func (r *rig) instance(policy auth.Policy) *auth.Service {
	o := r.opts
	o.Policy = policy
	return auth.New(o)
}

var open = auth.Policy{OpenSignup: true}

func (r *rig) signIn(sub, email string) auth.Grant {
	r.t.Helper()
	g, err := r.svc.SignIn(context.Background(), auth.SignInRequest{
		IdentityToken: r.apple.Mint(applefake.Claims{Subject: sub, Email: email, EmailVerified: "true"}),
	}, client)
	if err != nil {
		r.t.Fatalf("sign in: %v", err)
	}
	return g
}

func bearer(tok string) string { return "Bearer " + tok }

func expect(t *testing.T, err error, code, msg string) {
	t.Helper()
	if ovrlrd.ErrorCode(err) != code || (msg != "" && ovrlrd.ErrorMessage(err) != msg) {
		t.Fatalf("got %v (%q), want %s %q", err, ovrlrd.ErrorMessage(err), code, msg)
	}
}

func uniq(prefix string) string { return prefix + "." + time.Now().Format("150405.000000000") }

func TestSignInAndAuthenticate(t *testing.T) {
	r := newRig(t, open)
	dev := strings.Repeat("ab", 32)
	g, err := r.svc.SignIn(context.Background(), auth.SignInRequest{
		IdentityToken: r.apple.Mint(applefake.Claims{Subject: uniq("001"), Email: "a@example.com", EmailVerified: true}),
		DeviceToken:   &dev,
	}, client)
	if err != nil {
		t.Fatal(err)
	}
	if g.ExpiresIn != 86400 || g.UserID == "" || g.SessionToken == "" {
		t.Fatalf("grant %+v", g)
	}
	p, err := r.svc.Authenticate(context.Background(), bearer(g.SessionToken))
	if err != nil || p.UserID != g.UserID {
		t.Fatalf("authenticate: %+v %v", p, err)
	}
	devs, _ := r.store.Devices(context.Background(), g.UserID)
	if len(devs) != 1 || devs[0].Token != dev || devs[0].Environment != ovrlrd.EnvSandbox {
		t.Fatalf("device not registered: %+v", devs)
	}
	evs, _ := storetest.AuditEvents(context.Background(), g.UserID, 10)
	if len(evs) != 1 || evs[0].Action != audit.SignIn || evs[0].IPHash == "" || evs[0].IPHash == client.IP || evs[0].UserAgent != client.UserAgent {
		t.Fatalf("audit: %+v", evs)
	}
}

func TestSignInSameAccountTwice(t *testing.T) {
	r := newRig(t, open)
	sub := uniq("002")
	if a, b := r.signIn(sub, ""), r.signIn(sub, ""); a.UserID != b.UserID || a.SessionToken == b.SessionToken {
		t.Fatalf("second sign-in: %+v vs %+v", a, b)
	}
}

func TestSignInRefusesBadIdentityTokens(t *testing.T) {
	r := newRig(t, open)
	sub := uniq("003")
	past := time.Now().Add(-time.Hour)
	cases := map[string]string{
		"forged signature": r.apple.MintWith(applefake.Claims{Subject: sub}, applefake.Sign{Key: applefake.NewKey()}),
		"alg none":         r.apple.MintWith(applefake.Claims{Subject: sub}, applefake.Sign{None: true}),
		"HS256 with the public key": r.apple.MintWith(applefake.Claims{Subject: sub},
			applefake.Sign{HMACSecret: r.apple.PublicKeyPEM()}),
		"wrong audience": r.apple.Mint(applefake.Claims{Subject: sub, Audience: "com.evil.app"}),
		"wrong issuer":   r.apple.Mint(applefake.Claims{Subject: sub, Issuer: "https://evil.example"}),
		"expired":        r.apple.Mint(applefake.Claims{Subject: sub, IssuedAt: past.Add(-time.Hour), ExpiresAt: past}),
		"missing exp":    r.apple.Mint(applefake.Claims{Subject: sub, Extra: map[string]any{"exp": nil}}),
		"garbage":        "not.a.jwt",
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := r.svc.SignIn(context.Background(), auth.SignInRequest{IdentityToken: tok}, client)
			expect(t, err, ovrlrd.EUNAUTHORIZED, "Authentication failed")
		})
	}
	if _, err := r.store.UserByAppleSub(context.Background(), sub); !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
		t.Fatalf("a refused sign-in created a user: %v", err)
	}
}

func TestSignInWhenAppleIsDown(t *testing.T) {
	r := newRig(t, open)
	tok := r.apple.Mint(applefake.Claims{Subject: uniq("004")})
	r.apple.SetMode(applefake.Unavailable)
	start := time.Now()
	_, err := r.svc.SignIn(context.Background(), auth.SignInRequest{IdentityToken: tok}, client)
	expect(t, err, ovrlrd.EUNAVAILABLE, "")
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("outage took %v to report", d)
	}
}

func TestAllowList(t *testing.T) {
	listed := auth.Policy{Emails: []string{"Boss@Example.com"}, AppleIDs: []string{"001.listed"}}
	r := newRig(t, listed)
	ctx := context.Background()
	signIn := func(sub, email string, verified any) error {
		_, err := r.svc.SignIn(ctx, auth.SignInRequest{IdentityToken: r.apple.Mint(
			applefake.Claims{Subject: sub, Email: email, EmailVerified: verified})}, client)
		return err
	}
	expect(t, signIn(uniq("005"), "stranger@example.com", true), ovrlrd.EFORBIDDEN, "User not authorized")
	expect(t, signIn(uniq("005"), "boss@example.com", false), ovrlrd.EFORBIDDEN, "User not authorized") // unverified e-mail
	if err := signIn(uniq("005"), "BOSS@example.com", "true"); err != nil {
		t.Fatalf("listed e-mail: %v", err)
	}
	if err := signIn("001.listed", "", nil); err != nil {
		t.Fatalf("listed Apple id: %v", err)
	}

	// Removing someone from the list locks them out of an existing account:
	// sign-in, refresh and every request.
	sub := uniq("005")
	g, err := r.svc.SignIn(ctx, auth.SignInRequest{IdentityToken: r.apple.Mint(
		applefake.Claims{Subject: sub, Email: "boss@example.com", EmailVerified: true})}, client)
	if err != nil {
		t.Fatal(err)
	}
	after := r.instance(auth.Policy{Emails: []string{"other@example.com"}})
	_, err = after.Authenticate(ctx, bearer(g.SessionToken))
	expect(t, err, ovrlrd.EUNAUTHORIZED, "Invalid or expired token")
	_, err = after.Refresh(ctx, bearer(g.SessionToken), client)
	expect(t, err, ovrlrd.EUNAUTHORIZED, "Token refresh failed")
	_, err = after.SignIn(ctx, auth.SignInRequest{IdentityToken: r.apple.Mint(
		applefake.Claims{Subject: sub, Email: "boss@example.com", EmailVerified: true})}, client)
	expect(t, err, ovrlrd.EFORBIDDEN, "User not authorized")
}

func TestSignUpClosedWithoutLists(t *testing.T) {
	r := newRig(t, auth.Policy{})
	_, err := r.svc.SignIn(context.Background(), auth.SignInRequest{IdentityToken: r.apple.Mint(
		applefake.Claims{Subject: uniq("006")})}, client)
	expect(t, err, ovrlrd.EFORBIDDEN, "User not authorized")
}

func TestRefreshRotatesAndDetectsReuse(t *testing.T) {
	r := newRig(t, open)
	ctx := context.Background()
	g1 := r.signIn(uniq("007"), "")
	r.clock.advance(time.Hour)

	g2, err := r.svc.Refresh(ctx, bearer(g1.SessionToken), client)
	if err != nil || g2.SessionToken == g1.SessionToken || g2.UserID != g1.UserID || g2.ExpiresIn != 86400 {
		t.Fatalf("refresh: %+v %v", g2, err)
	}
	// Requests already under way with the old token still work briefly.
	if _, err := r.svc.Authenticate(ctx, bearer(g1.SessionToken)); err != nil {
		t.Fatalf("old token right after rotation: %v", err)
	}
	// A retry of the same refresh (its response was lost) gets the current
	// token again instead of tripping reuse detection.
	r.clock.advance(10 * time.Second)
	again, err := r.svc.Refresh(ctx, bearer(g1.SessionToken), client)
	if err != nil || again.SessionToken != g2.SessionToken {
		t.Fatalf("retry within the window: %v, same token %v", err, again.SessionToken == g2.SessionToken)
	}
	// After the window, the old token is refused everywhere...
	r.clock.advance(auth.RetryWindow)
	_, err = r.svc.Authenticate(ctx, bearer(g1.SessionToken))
	expect(t, err, ovrlrd.EUNAUTHORIZED, "Invalid or expired token")
	// ...and presenting it to refresh means it was copied: the whole session
	// dies, the current token with it.
	_, err = r.svc.Refresh(ctx, bearer(g1.SessionToken), client)
	expect(t, err, ovrlrd.EUNAUTHORIZED, "Token refresh failed")
	_, err = r.instance(open).Authenticate(ctx, bearer(g2.SessionToken))
	expect(t, err, ovrlrd.EUNAUTHORIZED, "Invalid or expired token")
	_, err = r.svc.Refresh(ctx, bearer(g2.SessionToken), client)
	expect(t, err, ovrlrd.EUNAUTHORIZED, "Token refresh failed")

	evs, _ := storetest.AuditEvents(ctx, g1.UserID, 20)
	if !hasAction(evs, audit.ReuseDetected) || !hasAction(evs, audit.Refresh) {
		t.Fatalf("audit trail: %+v", evs)
	}
}

func hasAction(evs []ovrlrd.AuditEvent, action string) bool {
	for _, e := range evs {
		if e.Action == action {
			return true
		}
	}
	return false
}

func TestRefreshGracePeriod(t *testing.T) {
	r := newRig(t, open)
	ctx := context.Background()
	within := r.signIn(uniq("008"), "")
	beyond := r.signIn(uniq("008"), "")
	r.clock.advance(24*time.Hour + 4*time.Hour - time.Minute)
	if _, err := r.svc.Authenticate(ctx, bearer(within.SessionToken)); err == nil {
		t.Fatal("an expired token passed a protected route")
	}
	if _, err := r.svc.Refresh(ctx, bearer(within.SessionToken), client); err != nil {
		t.Fatalf("refresh inside the grace period: %v", err)
	}
	r.clock.advance(2 * time.Minute)
	_, err := r.svc.Refresh(ctx, bearer(beyond.SessionToken), client)
	expect(t, err, ovrlrd.EUNAUTHORIZED, "Token refresh failed")
}

func TestRefreshAfterLogoutAndDeletion(t *testing.T) {
	r := newRig(t, open)
	ctx := context.Background()
	for _, end := range []string{"logout", "delete"} {
		t.Run(end, func(t *testing.T) {
			g := r.signIn(uniq("009"), "")
			p, err := r.svc.Authenticate(ctx, bearer(g.SessionToken))
			if err != nil {
				t.Fatal(err)
			}
			if end == "logout" {
				err = r.svc.Logout(ctx, p, client)
			} else {
				err = r.svc.DeleteAccount(ctx, p, client)
			}
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.svc.Refresh(ctx, bearer(g.SessionToken), client)
			expect(t, err, ovrlrd.EUNAUTHORIZED, "Token refresh failed")
			_, err = r.svc.Authenticate(ctx, bearer(g.SessionToken))
			expect(t, err, ovrlrd.EUNAUTHORIZED, "Invalid or expired token")
		})
	}
}

// Another instance that checked the session a moment ago keeps trusting it
// for at most the check interval, then sees the logout.
func TestLogoutReachesOtherInstancesWithinTheInterval(t *testing.T) {
	r := newRig(t, open)
	ctx := context.Background()
	other := r.instance(open)
	g := r.signIn(uniq("010"), "")
	p, err := other.Authenticate(ctx, bearer(g.SessionToken))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.svc.Logout(ctx, p, client); err != nil {
		t.Fatal(err)
	}
	r.clock.advance(r.opts.CheckInterval)
	_, err = other.Authenticate(ctx, bearer(g.SessionToken))
	expect(t, err, ovrlrd.EUNAUTHORIZED, "Invalid or expired token")
}

func TestConcurrentRefreshes(t *testing.T) {
	r := newRig(t, open)
	ctx := context.Background()
	g := r.signIn(uniq("011"), "")
	r.clock.advance(time.Hour)
	var wg sync.WaitGroup
	results := make([]auth.Grant, 2)
	errs := make([]error, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = r.instance(open).Refresh(ctx, bearer(g.SessionToken), client)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
	}
	if results[0].SessionToken != results[1].SessionToken {
		t.Fatal("two concurrent refreshes got different tokens")
	}
	if _, err := r.svc.Authenticate(ctx, bearer(results[0].SessionToken)); err != nil {
		t.Fatalf("the session did not survive concurrent refreshes: %v", err)
	}
}

func TestBearerErrors(t *testing.T) {
	r := newRig(t, open)
	ctx := context.Background()
	_, err := r.svc.Authenticate(ctx, "")
	expect(t, err, ovrlrd.EUNAUTHORIZED, "Missing authorization header")
	_, err = r.svc.Authenticate(ctx, "bearer x")
	expect(t, err, ovrlrd.EUNAUTHORIZED, "Missing authorization header")
	_, err = r.svc.Authenticate(ctx, "Bearer x.y.z")
	expect(t, err, ovrlrd.EUNAUTHORIZED, "Invalid or expired token")
	_, err = r.svc.Refresh(ctx, "Bearer x.y.z", client)
	expect(t, err, ovrlrd.EUNAUTHORIZED, "Token refresh failed")

	// A token signed with a key the ring no longer has.
	g := r.signIn(uniq("012"), "")
	o := r.opts
	o.Tokens = auth.NewIssuer(mustRing("k2:" + strings.Repeat("b", 40)))
	_, err = auth.New(o).Authenticate(ctx, bearer(g.SessionToken))
	expect(t, err, ovrlrd.EUNAUTHORIZED, "Invalid or expired token")
	// Rotating a new key in front keeps old tokens valid.
	o.Tokens = auth.NewIssuer(mustRing("k2:" + strings.Repeat("b", 40) + ",k1:" + strings.Repeat("a", 40)))
	if _, err := auth.New(o).Authenticate(ctx, bearer(g.SessionToken)); err != nil {
		t.Fatalf("old key still in the ring: %v", err)
	}
}
