package auth_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ovrlrd/cloud/internal/auth"
	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// asUnauthorized fails unless err is an *ovrlrd.Error with code
// EUNAUTHORIZED and one of msgs.
func asUnauthorized(t *testing.T, err error, msgs ...string) {
	t.Helper()
	var e *ovrlrd.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want *ovrlrd.Error", err, err)
	}
	if e.Code != ovrlrd.EUNAUTHORIZED {
		t.Fatalf("code %q, want %q", e.Code, ovrlrd.EUNAUTHORIZED)
	}
	for _, m := range msgs {
		if e.Message == m {
			return
		}
	}
	t.Fatalf("message %q, want one of %q", e.Message, msgs)
}

func FuzzBearer(f *testing.F) {
	for _, s := range []string{
		"", "Bearer", "Bearer ", "Bearer abc", "bearer x", "Bearer  x", "Bearerx", "Basic x",
		"Bearer \x00", "Bearer é", "Bearer a b", "Bearer\u00a0x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		tok, err := auth.Bearer(header)
		if err != nil {
			asUnauthorized(t, err, ovrlrd.MsgMissingHeader)
			if tok != "" {
				t.Fatalf("a token %q along with an error", tok)
			}
			return
		}
		if tok == "" || "Bearer "+tok != header {
			t.Fatalf("Bearer(%q) = %q", header, tok)
		}
		if strings.HasPrefix(tok, " ") || strings.HasPrefix(tok, "\t") {
			t.Fatalf("Bearer(%q) = %q, starting with whitespace", header, tok)
		}
	})
}

func FuzzVerify(f *testing.F) {
	ring := config.KeyRing{keyNew, keyOld}
	iss := auth.NewIssuer(ring)
	good, err := iss.Sign(claims())
	if err != nil {
		f.Fatal(err)
	}
	noSub := payload()
	delete(noSub, "sub")
	f.Add(good, int64(0))
	f.Add(good, int64(4*time.Hour))
	f.Add(good, int64(-time.Hour))
	f.Add(good[:len(good)-1], int64(0))
	f.Add(forge(f, jwt.SigningMethodHS256, keyNew.ID, noSub, secret(keyNew)), int64(0))
	f.Add(forge(f, jwt.SigningMethodNone, keyNew.ID, payload(), jwt.UnsafeAllowNoneSignatureType), int64(0))
	f.Add(forge(f, jwt.SigningMethodHS512, keyOld.ID, payload(), secret(keyOld)), int64(0))
	for _, s := range []string{"", ".", "..", "...", "a.b.c", "eyJ.eyJ.", "e30.e30.", "e30.e30.e30", "\x00.\xff.\n"} {
		f.Add(s, int64(0))
	}
	f.Fuzz(func(t *testing.T, raw string, expiredFor int64) {
		tolerance := time.Duration(expiredFor)
		c, err := iss.Verify(raw, now, tolerance)
		if err != nil {
			asUnauthorized(t, err, ovrlrd.MsgExpiredToken, ovrlrd.MsgInvalidToken)
			if c != (auth.Claims{}) {
				t.Fatalf("claims %+v along with an error", c)
			}
			return
		}
		if c.UserID == "" || c.SessionID == "" || c.Generation < 1 {
			t.Fatalf("accepted claims %+v without sub, sid or gen", c)
		}
		if !now.Before(c.ExpiresAt.Add(max(tolerance, 0))) {
			t.Fatalf("accepted claims %+v expired beyond %v", c, tolerance)
		}
	})
}
