package apple_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/apple"
	"github.com/ovrlrd/cloud/internal/devkit/applefake"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

const servicesID = "com.ovrlrd.web"

func hashed(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

// withNonce is claims() for aud, whose nonce claim is claim ("" leaves it
// out).
func withNonce(aud, claim string) applefake.Claims {
	c := claims()
	c.Audience = aud
	c.Extra = map[string]any{"nonce": claim}
	return c
}

// A Services ID's token is accepted only with the raw nonce whose hash it
// carries; the app's tokens need none, as before, and one given is checked.
func TestVerifyNonce(t *testing.T) {
	t.Parallel()
	s := fake(t)
	v := warm(t, s, apple.Options{Audiences: []string{applefake.Audience}, ServicesIDs: []string{servicesID}})
	raw := "a-random-value-the-page-kept"
	for _, c := range []struct {
		name      string
		aud       string
		claim     string // the token's nonce claim
		nonce     string // what the client sends
		wantError bool
	}{
		{"web, right nonce", servicesID, hashed(raw), raw, false},
		{"web, no nonce sent", servicesID, hashed(raw), "", true},
		{"web, another nonce sent", servicesID, hashed(raw), raw + "x", true},
		{"web, the hash sent as the nonce", servicesID, hashed(raw), hashed(raw), true},
		{"web, the raw value in the claim", servicesID, raw, raw, true},
		{"web, no claim", servicesID, "", raw, true},
		{"web, neither", servicesID, "", "", true},
		{"web, a claim of another case", servicesID, strings.ToUpper(hashed(raw)), raw, true},
		{"web, too long a nonce", servicesID, hashed(strings.Repeat("n", apple.MaxNonceBytes+1)), strings.Repeat("n", apple.MaxNonceBytes+1), true},
		{"app, no nonce", applefake.Audience, "", "", false},
		{"app, a claim but no nonce sent", applefake.Audience, hashed(raw), "", false},
		{"app, right nonce", applefake.Audience, hashed(raw), raw, false},
		{"app, wrong nonce", applefake.Audience, hashed(raw), "other", true},
		{"app, a nonce but no claim", applefake.Audience, "", raw, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			id, err := v.Verify(context.Background(), s.Mint(withNonce(c.aud, c.claim)), c.nonce)
			if !c.wantError {
				if err != nil || id.Subject != claims().Subject {
					t.Fatalf("Verify = %+v, %v; want the identity", id, err)
				}
				return
			}
			wantCode(t, err, ovrlrd.EUNAUTHORIZED)
			if msg := ovrlrd.ErrorMessage(err); msg != "Authentication failed" {
				t.Fatalf("message %q, want the one of every bad token", msg)
			}
		})
	}
}

// A token listing a Services ID among its audiences needs the nonce too.
func TestVerifyNonceAnyWebAudience(t *testing.T) {
	t.Parallel()
	s := fake(t)
	v := warm(t, s, apple.Options{Audiences: []string{applefake.Audience}, ServicesIDs: []string{servicesID}})
	c := claims()
	c.Extra = map[string]any{"aud": []string{applefake.Audience, servicesID}}
	_, err := v.Verify(context.Background(), s.Mint(c), "")
	wantCode(t, err, ovrlrd.EUNAUTHORIZED)
}

// Services IDs alone are a configuration: the web client without the app.
func TestVerifyServicesIDsOnly(t *testing.T) {
	t.Parallel()
	s := fake(t)
	v, err := apple.NewVerifier(t.Context(), apple.Options{JWKSURL: s.URL, ServicesIDs: []string{servicesID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), s.Mint(withNonce(servicesID, hashed("n"))), "n"); err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(context.Background(), s.Mint(withNonce(applefake.Audience, "")), "")
	wantCode(t, err, ovrlrd.EUNAUTHORIZED)
	if _, err := apple.NewVerifier(t.Context(), apple.Options{JWKSURL: s.URL, ServicesIDs: []string{""}}); err == nil {
		t.Error("an empty Services ID was accepted")
	}
}
