package apple_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ovrlrd/cloud/internal/apple"
	"github.com/ovrlrd/cloud/internal/devkit/applefake"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

func TestVerifyValidToken(t *testing.T) {
	t.Parallel()
	s := fake(t)
	v := verifier(t, apple.Options{JWKSURL: s.URL})
	c := claims()
	got := mustVerify(t, v, s.Mint(c))
	want := apple.Identity{Subject: c.Subject, Email: c.Email, EmailVerified: true}
	if got != want {
		t.Fatalf("identity = %+v, want %+v", got, want)
	}
	mustVerify(t, v, s.Mint(c))
	if n := s.Requests(); n != 1 {
		t.Fatalf("JWKS requests = %d, want 1 (keys cached)", n)
	}
}

func TestVerifyRejectsForgedSignature(t *testing.T) {
	t.Parallel()
	s := fake(t)
	v := warm(t, s, apple.Options{})
	_, err := v.Verify(context.Background(), s.MintWith(claims(), applefake.Sign{Key: applefake.NewKey()}), "")
	wantCode(t, err, ovrlrd.EUNAUTHORIZED)
	if !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		t.Fatalf("err = %v, want a signature failure", err)
	}
}

// Tampering with a signed token's payload must break its signature.
func TestVerifyRejectsTamperedPayload(t *testing.T) {
	t.Parallel()
	s := fake(t)
	v := warm(t, s, apple.Options{})
	parts := strings.Split(s.Mint(claims()), ".")
	other := strings.Split(s.Mint(applefake.Claims{Subject: "someone-else"}), ".")
	_, err := v.Verify(context.Background(), parts[0]+"."+other[1]+"."+parts[2], "")
	wantCode(t, err, ovrlrd.EUNAUTHORIZED)
}

func TestVerifyRejectsAlgNone(t *testing.T) {
	t.Parallel()
	s := fake(t)
	v := verifier(t, apple.Options{JWKSURL: s.URL})
	for name, tok := range map[string]string{
		"signed":         s.MintWith(claims(), applefake.Sign{None: true}),
		"rs256 sig kept": noneWithSignature(s),
	} {
		_, err := v.Verify(context.Background(), tok, "")
		wantCode(t, err, ovrlrd.EUNAUTHORIZED)
		if !strings.Contains(err.Error(), "signing method none is invalid") {
			t.Fatalf("%s: err = %v, want the method refused", name, err)
		}
	}
	if n := s.Requests(); n != 0 {
		t.Fatalf("JWKS requests = %d, want 0: a refused method needs no key", n)
	}
}

// noneWithSignature swaps a valid token's header for alg none.
func noneWithSignature(s *applefake.Server) string {
	parts := strings.Split(s.Mint(claims()), ".")
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"` + s.Kid() + `","typ":"JWT"}`))
	return h + "." + parts[1] + "." + parts[2]
}

func TestVerifyRejectsHS256WithApplePublicKey(t *testing.T) {
	t.Parallel()
	s := fake(t)
	v := verifier(t, apple.Options{JWKSURL: s.URL})
	for name, secret := range map[string][]byte{
		"pkix pem":  s.PublicKeyPEM(),
		"pkcs1 pem": s.PublicKeyPKCS1PEM(),
		"pkix der":  s.PublicKeyDER(),
	} {
		_, err := v.Verify(context.Background(), s.MintWith(claims(), applefake.Sign{HMACSecret: secret}), "")
		wantCode(t, err, ovrlrd.EUNAUTHORIZED)
		if !strings.Contains(err.Error(), "signing method HS256 is invalid") {
			t.Fatalf("%s: err = %v, want the method refused", name, err)
		}
	}
	if n := s.Requests(); n != 0 {
		t.Fatalf("JWKS requests = %d, want 0: a refused method needs no key", n)
	}
}

func TestVerifyRejectsBadClaims(t *testing.T) {
	t.Parallel()
	s := fake(t)
	v := warm(t, s, apple.Options{})
	now := time.Now()
	for _, tc := range []struct {
		name   string
		edit   func(*applefake.Claims)
		reason error
	}{
		{"wrong aud", func(c *applefake.Claims) { c.Audience = "com.example.other" }, jwt.ErrTokenInvalidAudience},
		{"aud list without ours", func(c *applefake.Claims) { c.Extra = map[string]any{"aud": []string{"a.b", "c.d"}} }, jwt.ErrTokenInvalidAudience},
		{"no aud", func(c *applefake.Claims) { c.Extra = map[string]any{"aud": nil} }, jwt.ErrTokenRequiredClaimMissing},
		{"wrong iss", func(c *applefake.Claims) { c.Issuer = "https://appleid.example.com" }, jwt.ErrTokenInvalidIssuer},
		{"iss with trailing slash", func(c *applefake.Claims) { c.Issuer = applefake.Issuer + "/" }, jwt.ErrTokenInvalidIssuer},
		{"expired beyond leeway", func(c *applefake.Claims) {
			c.IssuedAt, c.ExpiresAt = now.Add(-time.Hour), now.Add(-2*time.Minute)
		}, jwt.ErrTokenExpired},
		{"missing exp", func(c *applefake.Claims) { c.Extra = map[string]any{"exp": nil} }, jwt.ErrTokenRequiredClaimMissing},
		{"exp not a number", func(c *applefake.Claims) { c.Extra = map[string]any{"exp": "tomorrow"} }, jwt.ErrTokenMalformed},
		{"iat in the future", func(c *applefake.Claims) { c.IssuedAt = now.Add(5 * time.Minute) }, jwt.ErrTokenUsedBeforeIssued},
		{"nbf in the future", func(c *applefake.Claims) { c.Extra = map[string]any{"nbf": now.Add(5 * time.Minute).Unix()} }, jwt.ErrTokenNotValidYet},
		{"missing sub", func(c *applefake.Claims) { c.Subject = "" }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := claims()
			tc.edit(&c)
			_, err := v.Verify(context.Background(), s.Mint(c), "")
			wantCode(t, err, ovrlrd.EUNAUTHORIZED)
			if tc.reason != nil && !errors.Is(err, tc.reason) {
				t.Fatalf("err = %v, want %v", err, tc.reason)
			}
		})
	}
}

func TestVerifyExpiryLeeway(t *testing.T) {
	t.Parallel()
	s := fake(t)
	now := time.Now()
	v := warm(t, s, apple.Options{})
	justExpired, longExpired := claims(), claims()
	justExpired.IssuedAt, justExpired.ExpiresAt = now.Add(-10*time.Minute), now.Add(-30*time.Second)
	longExpired.IssuedAt, longExpired.ExpiresAt = now.Add(-10*time.Minute), now.Add(-90*time.Second)

	mustVerify(t, v, s.Mint(justExpired)) // within the 60 s leeway
	_, err := v.Verify(context.Background(), s.Mint(longExpired), "")
	wantCode(t, err, ovrlrd.EUNAUTHORIZED)
	if !errors.Is(err, jwt.ErrTokenExpired) {
		t.Fatalf("err = %v, want expired", err)
	}
}

func TestVerifyEmailFlags(t *testing.T) {
	t.Parallel()
	s := fake(t)
	v := warm(t, s, apple.Options{})
	for _, tc := range []struct {
		name     string
		verified any
		want     bool
	}{
		{"bool true", true, true},
		{"string true", "true", true},
		{"bool false", false, false},
		{"string false", "false", false},
		{"absent", nil, false},
		{"unrecognised string", "yes", false},
		{"unrecognised number", 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := claims()
			c.EmailVerified = tc.verified
			if id := mustVerify(t, v, s.Mint(c)); id.EmailVerified != tc.want {
				t.Fatalf("EmailVerified = %v, want %v", id.EmailVerified, tc.want)
			}
		})
	}
}

func TestVerifyMultipleAudiences(t *testing.T) {
	t.Parallel()
	s := fake(t)
	v := warm(t, s, apple.Options{Audiences: []string{"com.ovrlrd.app", "com.ovrlrd.app.dev"}})
	for _, aud := range []string{"com.ovrlrd.app", "com.ovrlrd.app.dev"} {
		c := claims()
		c.Audience = aud
		mustVerify(t, v, s.Mint(c))
	}
	c := claims()
	c.Audience = "com.ovrlrd.app.other"
	_, err := v.Verify(context.Background(), s.Mint(c), "")
	wantCode(t, err, ovrlrd.EUNAUTHORIZED)
}

func TestVerifyRejectsMissingKID(t *testing.T) {
	t.Parallel()
	s := fake(t)
	v := warm(t, s, apple.Options{})
	_, err := v.Verify(context.Background(), s.MintWith(claims(), applefake.Sign{NoKid: true}), "")
	wantCode(t, err, ovrlrd.EUNAUTHORIZED)
}

func TestVerifyRejectsMalformedTokens(t *testing.T) {
	t.Parallel()
	s := fake(t)
	v := verifier(t, apple.Options{JWKSURL: s.URL})
	header := strings.Split(s.Mint(claims()), ".")[0]
	for name, tok := range map[string]string{
		"empty":            "",
		"one part":         "abc",
		"two parts":        "abc.def",
		"four parts":       "a.b.c.d",
		"garbage base64":   "!!!.@@@.###",
		"empty parts":      "..",
		"garbage payload":  header + ".%%%%.c2ln",
		"payload not json": header + "." + base64.RawURLEncoding.EncodeToString([]byte("not json")) + ".c2ln",
		// Validly signed, so only the length cap refuses it.
		"oversize": s.Mint(applefake.Claims{Subject: "x", Extra: map[string]any{"pad": strings.Repeat("A", 9000)}}),
	} {
		_, err := v.Verify(context.Background(), tok, "")
		if ovrlrd.ErrorCode(err) != ovrlrd.EUNAUTHORIZED {
			t.Errorf("%s: err = %v, want %s", name, err, ovrlrd.EUNAUTHORIZED)
		}
	}
	if n := s.Requests(); n != 0 {
		t.Fatalf("JWKS requests = %d, want 0: malformed tokens need no key", n)
	}
}

func TestVerifyErrorsDoNotLeak(t *testing.T) {
	t.Parallel()
	s := fake(t)
	v := warm(t, s, apple.Options{})
	c := claims()
	c.Audience = "com.example.other"
	tok := s.Mint(c)
	_, err := v.Verify(context.Background(), tok, "")
	wantCode(t, err, ovrlrd.EUNAUTHORIZED)
	if msg := ovrlrd.ErrorMessage(err); msg != "Authentication failed" {
		t.Fatalf("user message = %q", msg)
	}
	for _, secret := range []string{tok, c.Subject, c.Email, strings.Split(tok, ".")[1]} {
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error text %q reveals %q", err, secret)
		}
	}
}

func TestNewVerifierRejectsBadOptions(t *testing.T) {
	t.Parallel()
	aud := []string{applefake.Audience}
	for name, o := range map[string]apple.Options{
		"no url":         {Audiences: aud},
		"relative url":   {JWKSURL: "appleid/keys", Audiences: aud},
		"ftp url":        {JWKSURL: "ftp://appleid.apple.com/auth/keys", Audiences: aud},
		"no audiences":   {JWKSURL: "https://appleid.apple.com/auth/keys"},
		"empty audience": {JWKSURL: "https://appleid.apple.com/auth/keys", Audiences: []string{""}},
	} {
		if _, err := apple.NewVerifier(context.Background(), o); err == nil {
			t.Errorf("%s: NewVerifier succeeded", name)
		}
	}
}
