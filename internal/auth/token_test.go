package auth_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ovrlrd/cloud/internal/auth"
	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

var (
	keyOld = config.Key{ID: "k2025", Secret: config.NewSecret("old-secret-0123456789abcdefghijklmnop")}
	keyNew = config.Key{ID: "k2026", Secret: config.NewSecret("new-secret-0123456789abcdefghijklmnop")}
	// now is a fixed clock: tokens in these tests never depend on the real one.
	now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

func claims() auth.Claims {
	return auth.Claims{
		UserID: "0b7e4c1a-3f2d-4e5f-8a9b-0c1d2e3f4a5b", SessionID: "SESSIONID234567ABCDEFGHIJK",
		Generation: 3, IssuedAt: now.Add(-time.Hour), ExpiresAt: now.Add(23 * time.Hour),
	}
}

func sign(t *testing.T, iss *auth.Issuer, c auth.Claims) string {
	t.Helper()
	s, err := iss.Sign(c)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return s
}

// forge signs an arbitrary header and payload with method and key, to build
// tokens Sign would never issue.
func forge(t testing.TB, method jwt.SigningMethod, kid string, payload jwt.MapClaims, key any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, payload)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("forge: %v", err)
	}
	return s
}

// payload is what Sign would put in a token, as a map a test can change.
func payload() jwt.MapClaims {
	c := claims()
	return jwt.MapClaims{
		"sub": c.UserID, "sid": c.SessionID, "gen": c.Generation,
		"iat": c.IssuedAt.Unix(), "exp": c.ExpiresAt.Unix(),
	}
}

func secret(k config.Key) []byte { return []byte(k.Secret.Reveal()) }

// wantErr checks that err is the contract's 401 with message msg, carries
// its cause for logs, and quotes neither the token nor its signature.
func wantErr(t *testing.T, raw string, err error, msg string) {
	t.Helper()
	var e *ovrlrd.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want *ovrlrd.Error", err, err)
	}
	if e.Code != ovrlrd.EUNAUTHORIZED || e.Message != msg {
		t.Fatalf("error code %q message %q, want %q %q", e.Code, e.Message, ovrlrd.EUNAUTHORIZED, msg)
	}
	if e.Err == nil {
		t.Fatalf("error %q carries no cause for the logs", e.Message)
	}
	if ovrlrd.ErrorMessage(err) != msg {
		t.Fatalf("user-facing message %q, want %q", ovrlrd.ErrorMessage(err), msg)
	}
	text := err.Error()
	parts := strings.Split(raw, ".")
	for _, p := range append(parts, raw) {
		if len(p) >= 16 && strings.Contains(text, p) {
			t.Fatalf("error %q quotes the token", text)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	iss := auth.NewIssuer(config.KeyRing{keyNew})
	c := claims()
	c.IssuedAt = c.IssuedAt.Add(123 * time.Millisecond) // below a second: dropped
	raw := sign(t, iss, c)
	got, err := iss.Verify(raw, now, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := claims()
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}

	header, _, _ := strings.Cut(raw, ".")
	h, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		t.Fatal(err)
	}
	if string(h) != `{"alg":"HS256","kid":"k2026","typ":"JWT"}` {
		t.Fatalf("header %s", h)
	}
}

func TestRoundTripWithoutIssuedAt(t *testing.T) {
	iss := auth.NewIssuer(config.KeyRing{keyNew})
	c := claims()
	c.IssuedAt = time.Time{}
	got, err := iss.Verify(sign(t, iss, c), now, 0)
	if err != nil || got != c {
		t.Fatalf("got %+v, %v; want %+v", got, err, c)
	}
}

func TestSignIsDeterministic(t *testing.T) {
	ring := config.KeyRing{keyNew, keyOld}
	a := sign(t, auth.NewIssuer(ring), claims())
	b := sign(t, auth.NewIssuer(ring), claims())
	if a != b {
		t.Fatalf("equal claims and key gave two tokens:\n%s\n%s", a, b)
	}
	c := claims()
	c.Generation++
	if sign(t, auth.NewIssuer(ring), c) == a {
		t.Fatal("a different generation gave the same token")
	}
	if sign(t, auth.NewIssuer(config.KeyRing{keyOld}), claims()) == a {
		t.Fatal("a different key gave the same token")
	}
}

func TestSignRefuses(t *testing.T) {
	good := auth.NewIssuer(config.KeyRing{keyNew})
	for name, tc := range map[string]struct {
		iss *auth.Issuer
		c   func(*auth.Claims)
	}{
		"empty ring":     {auth.NewIssuer(nil), func(*auth.Claims) {}},
		"short secret":   {auth.NewIssuer(config.KeyRing{{ID: "k", Secret: config.NewSecret("short")}}), func(*auth.Claims) {}},
		"no kid":         {auth.NewIssuer(config.KeyRing{{Secret: keyNew.Secret}}), func(*auth.Claims) {}},
		"no user":        {good, func(c *auth.Claims) { c.UserID = "" }},
		"no session":     {good, func(c *auth.Claims) { c.SessionID = "" }},
		"generation 0":   {good, func(c *auth.Claims) { c.Generation = 0 }},
		"no expiry":      {good, func(c *auth.Claims) { c.ExpiresAt = time.Time{} }},
		"negative gen":   {good, func(c *auth.Claims) { c.Generation = -1 }},
		"no user or sid": {good, func(c *auth.Claims) { c.UserID, c.SessionID = "", "" }},
	} {
		t.Run(name, func(t *testing.T) {
			c := claims()
			tc.c(&c)
			s, err := tc.iss.Sign(c)
			if s != "" || !ovrlrd.IsCode(err, ovrlrd.EINTERNAL) {
				t.Fatalf("Sign = %q, %v; want an internal error", s, err)
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	before := auth.NewIssuer(config.KeyRing{keyOld})
	during := auth.NewIssuer(config.KeyRing{keyNew, keyOld})
	after := auth.NewIssuer(config.KeyRing{keyNew})

	old := sign(t, before, claims())
	if _, err := during.Verify(old, now, 0); err != nil {
		t.Fatalf("a token of a key still in the ring: %v", err)
	}
	fresh := sign(t, during, claims())
	if fresh == old {
		t.Fatal("the ring's first key did not sign")
	}
	for name, iss := range map[string]*auth.Issuer{"during": during, "after": after} {
		if _, err := iss.Verify(fresh, now, 0); err != nil {
			t.Fatalf("%s: a token of the new key: %v", name, err)
		}
	}
	_, err := after.Verify(old, now, 0)
	wantErr(t, old, err, ovrlrd.MsgExpiredToken)
	_, err = before.Verify(fresh, now, 0)
	wantErr(t, fresh, err, ovrlrd.MsgExpiredToken)
}

func TestVerifyRefusesForeignSignatures(t *testing.T) {
	iss := auth.NewIssuer(config.KeyRing{keyNew, keyOld})
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	stranger := []byte("stranger-secret-0123456789abcdefghijkl")
	cases := map[string]string{
		"alg none":                        forge(t, jwt.SigningMethodNone, keyNew.ID, payload(), jwt.UnsafeAllowNoneSignatureType),
		"alg none, no kid":                forge(t, jwt.SigningMethodNone, "", payload(), jwt.UnsafeAllowNoneSignatureType),
		"RS256":                           forge(t, jwt.SigningMethodRS256, keyNew.ID, payload(), rsaKey),
		"HS512 with a ring key":           forge(t, jwt.SigningMethodHS512, keyNew.ID, payload(), secret(keyNew)),
		"HS384 with a ring key":           forge(t, jwt.SigningMethodHS384, keyNew.ID, payload(), secret(keyNew)),
		"HS256, kid not in ring":          forge(t, jwt.SigningMethodHS256, "k1999", payload(), stranger),
		"HS256, ring kid, foreign secret": forge(t, jwt.SigningMethodHS256, keyNew.ID, payload(), stranger),
		"HS256, kid of the other key":     forge(t, jwt.SigningMethodHS256, keyOld.ID, payload(), secret(keyNew)),
		"HS256, no kid":                   forge(t, jwt.SigningMethodHS256, "", payload(), secret(keyNew)),
		"HS256, odd kid":                  forge(t, jwt.SigningMethodHS256, "../../etc", payload(), secret(keyNew)),
		"HS256, empty secret":             forge(t, jwt.SigningMethodHS256, keyNew.ID, payload(), []byte{}),
	}
	// The JWT of §2.4: the old server's format, no kid, no sid, no gen.
	legacy := payload()
	delete(legacy, "sid")
	delete(legacy, "gen")
	cases["legacy server token"] = forge(t, jwt.SigningMethodHS256, "", legacy, secret(keyNew))
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := iss.Verify(raw, now, 0)
			wantErr(t, raw, err, ovrlrd.MsgExpiredToken)
		})
	}
}

func TestVerifyRefusesKeyWithEmptySecret(t *testing.T) {
	// A ring built by hand, bypassing config's checks, must not turn an
	// empty secret into a key that verifies tokens signed with nothing.
	iss := auth.NewIssuer(config.KeyRing{{ID: "empty", Secret: config.NewSecret("")}})
	raw := forge(t, jwt.SigningMethodHS256, "empty", payload(), []byte{})
	_, err := iss.Verify(raw, now, 0)
	wantErr(t, raw, err, ovrlrd.MsgExpiredToken)
}

func TestVerifyRefusesTampering(t *testing.T) {
	iss := auth.NewIssuer(config.KeyRing{keyNew})
	raw := sign(t, iss, claims())
	h, p, s := split(t, raw)

	other := payload()
	other["sub"] = "11111111-2222-4333-8444-555555555555"
	_, p2, _ := split(t, forge(t, jwt.SigningMethodHS256, keyNew.ID, other, []byte("whatever-0123456789abcdefghijklmnop")))
	later := payload()
	later["exp"] = now.Add(365 * 24 * time.Hour).Unix()
	_, p3, _ := split(t, forge(t, jwt.SigningMethodHS256, keyNew.ID, later, []byte("whatever-0123456789abcdefghijklmnop")))
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"k2026","typ":"JWT"}`))
	flipped := []byte(s)
	flipped[0] ^= 1

	for name, bad := range map[string]string{
		"payload with another sub":    h + "." + p2 + "." + s,
		"payload with a later exp":    h + "." + p3 + "." + s,
		"header switched to none":     noneHeader + "." + p + "." + s,
		"header none, no signature":   noneHeader + "." + p + ".",
		"signature flipped":           h + "." + p + "." + string(flipped),
		"signature dropped":           h + "." + p + ".",
		"signature padded":            raw + "=",
		"signature truncated":         raw[:len(raw)-2],
		"two segments":                h + "." + p,
		"four segments":               raw + "." + s,
		"standard base64":             strings.NewReplacer("-", "+", "_", "/").Replace(raw) + "+/",
		"garbage":                     "not a token",
		"empty":                       "",
		"dots":                        "..",
		"header not JSON":             base64.RawURLEncoding.EncodeToString([]byte("{")) + "." + p + "." + s,
		"huge":                        raw + strings.Repeat("A", 5000),
		"whitespace around the token": " " + raw + " ",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := iss.Verify(bad, now, 0)
			wantErr(t, bad, err, ovrlrd.MsgExpiredToken)
		})
	}
}

func split(t *testing.T, raw string) (string, string, string) {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments", len(parts))
	}
	return parts[0], parts[1], parts[2]
}

func TestVerifyExpiry(t *testing.T) {
	iss := auth.NewIssuer(config.KeyRing{keyNew})
	const grace = 4 * time.Hour
	at := func(exp time.Time) string {
		c := claims()
		c.ExpiresAt = exp
		return sign(t, iss, c)
	}
	for _, tc := range []struct {
		name       string
		exp        time.Time
		expiredFor time.Duration
		ok         bool
	}{
		{"a second left, no tolerance", now.Add(time.Second), 0, true},
		{"expiring now, no tolerance", now, 0, false},
		{"a second ago, no tolerance", now.Add(-time.Second), 0, false},
		{"a second ago, negative tolerance", now.Add(-time.Second), -time.Hour, false},
		{"live, negative tolerance", now.Add(time.Hour), -time.Hour, true},
		{"expired within the grace", now.Add(-grace + time.Second), grace, true},
		{"expired just now, within the grace", now.Add(-time.Second), grace, true},
		{"expired exactly the grace ago", now.Add(-grace), grace, false},
		{"expired beyond the grace", now.Add(-grace - time.Minute), grace, false},
		{"live, with a grace", now.Add(time.Hour), grace, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := at(tc.exp)
			c, err := iss.Verify(raw, now, tc.expiredFor)
			if tc.ok {
				if err != nil || !c.ExpiresAt.Equal(tc.exp) {
					t.Fatalf("Verify = %+v, %v; want accepted", c, err)
				}
				return
			}
			wantErr(t, raw, err, ovrlrd.MsgExpiredToken)
		})
	}
}

func TestVerifyRequiredClaims(t *testing.T) {
	iss := auth.NewIssuer(config.KeyRing{keyNew})
	for _, tc := range []struct {
		name   string
		change func(jwt.MapClaims)
		msg    string
	}{
		{"no exp", func(p jwt.MapClaims) { delete(p, "exp") }, ovrlrd.MsgExpiredToken},
		{"exp as a string", func(p jwt.MapClaims) { p["exp"] = "2099-01-01" }, ovrlrd.MsgExpiredToken},
		{"no sub", func(p jwt.MapClaims) { delete(p, "sub") }, ovrlrd.MsgInvalidToken},
		{"empty sub", func(p jwt.MapClaims) { p["sub"] = "" }, ovrlrd.MsgInvalidToken},
		{"no sub and no sid", func(p jwt.MapClaims) { delete(p, "sub"); delete(p, "sid") }, ovrlrd.MsgInvalidToken},
		{"no sub but expired", func(p jwt.MapClaims) { delete(p, "sub"); p["exp"] = now.Add(-time.Hour).Unix() }, ovrlrd.MsgExpiredToken},
		{"no sub and no exp", func(p jwt.MapClaims) { delete(p, "sub"); delete(p, "exp") }, ovrlrd.MsgExpiredToken},
		{"sub not a string", func(p jwt.MapClaims) { p["sub"] = 42 }, ovrlrd.MsgExpiredToken},
		{"no sid", func(p jwt.MapClaims) { delete(p, "sid") }, ovrlrd.MsgExpiredToken},
		{"empty sid", func(p jwt.MapClaims) { p["sid"] = "" }, ovrlrd.MsgExpiredToken},
		{"no gen", func(p jwt.MapClaims) { delete(p, "gen") }, ovrlrd.MsgExpiredToken},
		{"gen 0", func(p jwt.MapClaims) { p["gen"] = 0 }, ovrlrd.MsgExpiredToken},
		{"gen negative", func(p jwt.MapClaims) { p["gen"] = -2 }, ovrlrd.MsgExpiredToken},
		{"gen a string", func(p jwt.MapClaims) { p["gen"] = "1" }, ovrlrd.MsgExpiredToken},
		{"gen fractional", func(p jwt.MapClaims) { p["gen"] = 1.5 }, ovrlrd.MsgExpiredToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := payload()
			tc.change(p)
			raw := forge(t, jwt.SigningMethodHS256, keyNew.ID, p, secret(keyNew))
			_, err := iss.Verify(raw, now, 0)
			wantErr(t, raw, err, tc.msg)
		})
	}

	// Extra claims are ignored, and a forged token in the right shape is
	// accepted: the signature is what counts.
	p := payload()
	p["deviceId"] = "x"
	raw := forge(t, jwt.SigningMethodHS256, keyNew.ID, p, secret(keyNew))
	if got, err := iss.Verify(raw, now, 0); err != nil || got != claims() {
		t.Fatalf("Verify = %+v, %v; want %+v", got, err, claims())
	}
}

func TestBearer(t *testing.T) {
	for _, header := range []string{
		"", "Bearer", "Bearer ", "bearer x", "BEARER x", "Bearer  x", "Bearer\tx", "Bearer \tx",
		"Bearerx", "Basic x", " Bearer x", "Token x",
	} {
		tok, err := auth.Bearer(header)
		if tok != "" {
			t.Fatalf("Bearer(%q) = %q, want nothing", header, tok)
		}
		wantErr(t, header, err, ovrlrd.MsgMissingHeader)
	}
	for header, want := range map[string]string{
		"Bearer abc":           "abc",
		"Bearer a.b.c":         "a.b.c",
		"Bearer eyJ.eyJ.sig-_": "eyJ.eyJ.sig-_",
	} {
		if tok, err := auth.Bearer(header); err != nil || tok != want {
			t.Fatalf("Bearer(%q) = %q, %v; want %q", header, tok, err, want)
		}
	}
}

func TestBearerThenVerify(t *testing.T) {
	iss := auth.NewIssuer(config.KeyRing{keyNew})
	raw := sign(t, iss, claims())
	tok, err := auth.Bearer("Bearer " + raw)
	if err != nil || tok != raw {
		t.Fatalf("Bearer = %q, %v", tok, err)
	}
	if _, err := iss.Verify(tok, now, 0); err != nil {
		t.Fatal(err)
	}
}
