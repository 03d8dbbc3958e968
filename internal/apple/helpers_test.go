package apple_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ovrlrd/cloud/internal/apple"
	"github.com/ovrlrd/cloud/internal/devkit/applefake"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

func fake(t *testing.T) *applefake.Server {
	t.Helper()
	s := applefake.New()
	t.Cleanup(s.Close)
	return s
}

func verifier(t *testing.T, opts apple.Options) *apple.Verifier {
	t.Helper()
	if opts.Audiences == nil {
		opts.Audiences = []string{applefake.Audience}
	}
	v, err := apple.NewVerifier(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// warm returns a verifier that has fetched s's keys once.
func warm(t *testing.T, s *applefake.Server, opts apple.Options) *apple.Verifier {
	t.Helper()
	opts.JWKSURL = s.URL
	v := verifier(t, opts)
	mustVerify(t, v, s.Mint(claims()))
	return v
}

func claims() applefake.Claims {
	return applefake.Claims{Subject: "001234.abcdef.0123", Email: "someone@example.com", EmailVerified: true}
}

func mustVerify(t *testing.T, v *apple.Verifier, token string) apple.Identity {
	t.Helper()
	id, err := v.Verify(context.Background(), token, "")
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return id
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := ovrlrd.ErrorCode(err); got != code {
		t.Fatalf("error code = %q, want %q (err: %v)", got, code, err)
	}
}

// verifyCode runs Verify, checks its error code and returns how long it
// took, for the log.
func verifyCode(t *testing.T, v *apple.Verifier, token, code string) time.Duration {
	t.Helper()
	start := time.Now()
	_, err := v.Verify(context.Background(), token, "")
	took := time.Since(start)
	wantCode(t, err, code)
	return took
}

// patientClient waits an hour for the JWK Set: with it, whatever ends a
// wait sooner is the code under test.
func patientClient() *http.Client { return &http.Client{Timeout: time.Hour} }

// returns runs f and fails the test if f has not returned after a minute:
// nothing but the code under test bounds it.
func returns(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("%s: still waiting after a minute", what)
	}
}

// noGoroutinesLeft waits until no goroutine is left but those ignore
// names; a goroutine that was told to end may take a moment on a loaded
// machine, one that was not never ends.
func noGoroutinesLeft(t *testing.T, ignore ...goleak.Option) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := goleak.Find(ignore...)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
}
