package apple_test

import (
	"context"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/apple"
	"github.com/ovrlrd/cloud/internal/apple/applefake"
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
	v, err := apple.NewVerifier(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
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
	id, err := v.Verify(context.Background(), token)
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

// verifyCode runs Verify and checks its error code and how long it took.
func verifyCode(t *testing.T, v *apple.Verifier, token, code string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	_, err := v.Verify(context.Background(), token)
	took := time.Since(start)
	wantCode(t, err, code)
	if took > within {
		t.Fatalf("Verify took %v, want under %v", took, within)
	}
	return took
}
