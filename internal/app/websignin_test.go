package app_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/devkit/applefake"
)

// POST /auth for Sign in with Apple on the web: a token for the Services ID
// signs in only with the raw nonce whose hash it carries; the app's tokens
// sign in without one, as they always have.
func TestWebSignInNeedsTheNonce(t *testing.T) {
	const web = "com.ovrlrd.web.test"
	s := newStack(t, "APPLE_SERVICES_ID", web)
	raw := "page-kept-nonce-0123456789"
	sum := sha256.Sum256([]byte(raw))
	token := func(aud, nonceClaim string) string {
		return s.apple.Mint(applefake.Claims{Subject: "001122.web.nonce", Audience: aud, Extra: map[string]any{"nonce": nonceClaim}})
	}
	body := func(fields map[string]any) string {
		b, err := json.Marshal(fields)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	webToken := token(web, hex.EncodeToString(sum[:]))
	for _, c := range []struct {
		name   string
		body   string
		status int
		want   string // the body, when not a grant
	}{
		{"web, right nonce", body(map[string]any{"identityToken": webToken, "nonce": raw}), 200, ""},
		{"web, no nonce", body(map[string]any{"identityToken": webToken}), 401, `{"error":"Authentication failed"}`},
		{"web, wrong nonce", body(map[string]any{"identityToken": webToken, "nonce": raw + "!"}), 401, `{"error":"Authentication failed"}`},
		{"web, the hash as nonce", body(map[string]any{"identityToken": webToken, "nonce": hex.EncodeToString(sum[:])}), 401, `{"error":"Authentication failed"}`},
		{"web, token without a nonce claim", body(map[string]any{"identityToken": token(web, ""), "nonce": raw}), 401, `{"error":"Authentication failed"}`},
		{"app, no nonce", body(map[string]any{"identityToken": token(applefake.Audience, ""), "deviceToken": strings.Repeat("0f", 32)}), 200, ""},
		{"nonce too long", body(map[string]any{"identityToken": webToken, "nonce": strings.Repeat("n", 129)}), 400, `{"error":"Field \"nonce\" must be 1 to 128 characters."}`},
		{"nonce empty", body(map[string]any{"identityToken": webToken, "nonce": ""}), 400, `{"error":"Field \"nonce\" must be 1 to 128 characters."}`},
		{"nonce not a string", body(map[string]any{"identityToken": webToken, "nonce": 7}), 400, `{"error":"Field \"nonce\" must be of type string."}`},
		{"still strict", body(map[string]any{"identityToken": webToken, "nonce": raw, "state": "x"}), 400, `{"error":"Unknown field \"state\"."}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := s.call(t, "POST", "/auth", c.body, "")
			if r.status != c.status {
				t.Fatalf("got %d %s, want %d", r.status, r.body, c.status)
			}
			if c.want != "" && r.body != c.want {
				t.Fatalf("got %s, want %s", r.body, c.want)
			}
			if c.status == 200 {
				if m := r.json(t); len(m) != 3 || m["sessionToken"] == "" {
					t.Fatalf("grant shape: %s", r.body)
				}
			}
		})
	}
}
