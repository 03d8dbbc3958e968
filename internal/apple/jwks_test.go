package apple_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/apple"
	"github.com/ovrlrd/cloud/internal/apple/applefake"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

func TestNewVerifierDoesNoIO(t *testing.T) {
	t.Parallel()
	s := fake(t)
	s.SetMode(applefake.Hang)
	start := time.Now()
	verifier(t, apple.Options{JWKSURL: s.URL})
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Fatalf("NewVerifier took %v with the JWK Set hanging", took)
	}
	if n := s.Requests(); n != 0 {
		t.Fatalf("JWKS requests = %d, want 0 before the first Verify", n)
	}
}

func TestVerifyJWKSDownAtConstructionThenRecovers(t *testing.T) {
	t.Parallel()
	s := fake(t)
	s.Down(true)
	v := verifier(t, apple.Options{JWKSURL: s.URL})
	tok := s.Mint(claims())
	verifyCode(t, v, tok, ovrlrd.EUNAVAILABLE, time.Second)
	verifyCode(t, v, tok, ovrlrd.EUNAVAILABLE, time.Second)
	s.Down(false)
	mustVerify(t, v, tok)
	if n := s.Requests(); n != 3 {
		t.Fatalf("JWKS requests = %d, want 3 (one per Verify until the first fetch succeeds)", n)
	}
}

func TestVerifyJWKSOutageIsUnavailable(t *testing.T) {
	t.Parallel()
	refused := httptest.NewServer(http.NotFoundHandler())
	refused.Close()
	for _, tc := range []struct {
		name string
		mode applefake.Mode
		url  string
	}{
		{"503", applefake.Unavailable, ""},
		{"garbage json", applefake.Garbage, ""},
		{"connection refused", applefake.Up, refused.URL + "/auth/keys"},
		{"timeout", applefake.Hang, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := fake(t)
			s.SetMode(tc.mode)
			url := s.URL
			if tc.url != "" {
				url = tc.url
			}
			v := verifier(t, apple.Options{JWKSURL: url})
			start := time.Now()
			_, err := v.Verify(context.Background(), s.Mint(claims()))
			took := time.Since(start)
			t.Logf("EUNAVAILABLE after %v", took)
			wantCode(t, err, ovrlrd.EUNAVAILABLE)
			if took > 5*time.Second {
				t.Fatalf("Verify took %v, want under 5s", took)
			}
			if msg := ovrlrd.ErrorMessage(err); msg != "Sign in with Apple is temporarily unavailable. Please try again." {
				t.Fatalf("user message = %q", msg)
			}
		})
	}
}

// A caller's deadline shorter than the HTTP timeout bounds its wait.
func TestVerifyJWKSOutageHonoursContext(t *testing.T) {
	t.Parallel()
	s := fake(t)
	s.SetMode(applefake.Hang)
	v := verifier(t, apple.Options{JWKSURL: s.URL})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := v.Verify(ctx, s.Mint(claims()))
	wantCode(t, err, ovrlrd.EUNAVAILABLE)
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Verify took %v past a 200ms deadline", took)
	}
}

func TestVerifyCachedKeysSurviveOutage(t *testing.T) {
	t.Parallel()
	for name, mode := range map[string]applefake.Mode{"503": applefake.Unavailable, "timeout": applefake.Hang} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := fake(t)
			v := warm(t, s, apple.Options{})
			s.SetMode(mode)
			mustVerify(t, v, s.Mint(claims()))
			// Apple may have rotated, and the set cannot be read to know.
			took := verifyCode(t, v, s.MintWith(claims(), applefake.Sign{Kid: "not-published"}), ovrlrd.EUNAVAILABLE, 2*time.Second)
			t.Logf("unknown kid during outage: EUNAVAILABLE after %v", took)
			mustVerify(t, v, s.Mint(claims()))
		})
	}
}

func TestVerifyUnknownKIDWhileJWKSUpIsUnauthorized(t *testing.T) {
	t.Parallel()
	s := fake(t)
	v := warm(t, s, apple.Options{})
	before := s.Requests()
	verifyCode(t, v, s.MintWith(claims(), applefake.Sign{Kid: "not-published"}), ovrlrd.EUNAUTHORIZED, time.Second)
	if n := s.Requests() - before; n != 1 {
		t.Fatalf("refreshes = %d, want 1", n)
	}
}

func TestVerifyRotatedKeyAfterOneRefresh(t *testing.T) {
	t.Parallel()
	s := fake(t)
	v := warm(t, s, apple.Options{})
	old := s.Kid()
	before := s.Requests()
	s.Rotate()
	s.Retire(old)
	mustVerify(t, v, s.Mint(claims()))
	mustVerify(t, v, s.Mint(claims()))
	if n := s.Requests() - before; n != 1 {
		t.Fatalf("refreshes = %d, want 1", n)
	}
	// The refresh replaced the cache, so the retired key is gone too.
	_, err := v.Verify(context.Background(), s.MintWith(claims(), applefake.Sign{Kid: old}))
	wantCode(t, err, ovrlrd.EUNAUTHORIZED)
}

func TestVerifyUnknownKIDFloodRefreshesOncePerWindow(t *testing.T) {
	t.Parallel()
	s := fake(t)
	v := warm(t, s, apple.Options{})
	before := s.Requests()
	start := time.Now()
	flood(t, s, v, 50, ovrlrd.EUNAUTHORIZED)
	if n := s.Requests() - before; n != 1 {
		t.Fatalf("refreshes = %d for 50 unknown kids, want 1 per window", n)
	}
	t.Logf("50 unknown kids refused in %v", time.Since(start))
}

func TestVerifyUnknownKIDRefreshesAgainAfterWindow(t *testing.T) {
	t.Parallel()
	const window = 300 * time.Millisecond
	s := fake(t)
	v := warm(t, s, apple.WithWindows(apple.Options{}, time.Hour, window))
	before := s.Requests()
	start := time.Now()
	for time.Since(start) < 3*window {
		flood(t, s, v, 5, ovrlrd.EUNAUTHORIZED)
	}
	n, max := s.Requests()-before, int(time.Since(start)/window)+1
	if n < 2 || n > max {
		t.Fatalf("refreshes = %d over %v, want 2..%d", n, time.Since(start), max)
	}
}

// After an outage, an unknown kid is EUNAVAILABLE until a refresh is allowed
// again and succeeds; then a rotated key works.
func TestVerifyRecoversAfterRefreshOutage(t *testing.T) {
	t.Parallel()
	const window = 200 * time.Millisecond
	s := fake(t)
	v := warm(t, s, apple.WithWindows(apple.Options{}, time.Hour, window))
	s.Down(true)
	s.Rotate()
	verifyCode(t, v, s.Mint(claims()), ovrlrd.EUNAVAILABLE, 2*time.Second)
	s.Down(false)
	time.Sleep(window)
	mustVerify(t, v, s.Mint(claims()))
}

func TestCloseStopsBackgroundRefresh(t *testing.T) {
	t.Parallel()
	const every = 30 * time.Millisecond
	s := fake(t)
	v := warm(t, s, apple.WithWindows(apple.Options{}, every, time.Minute))
	waitFor(t, func() bool { return s.Requests() >= 3 })
	v.Close()
	time.Sleep(2 * every) // let a tick already under way finish
	n := s.Requests()
	time.Sleep(5 * every)
	if m := s.Requests(); m != n {
		t.Fatalf("JWKS requests went from %d to %d after Close", n, m)
	}
}

func TestCancelledContextStopsBackgroundRefresh(t *testing.T) {
	t.Parallel()
	const every = 30 * time.Millisecond
	s := fake(t)
	ctx, cancel := context.WithCancel(context.Background())
	v, err := apple.NewVerifier(ctx, apple.WithWindows(apple.Options{JWKSURL: s.URL, Audiences: []string{applefake.Audience}}, every, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	mustVerify(t, v, s.Mint(claims()))
	waitFor(t, func() bool { return s.Requests() >= 3 })
	cancel()
	time.Sleep(2 * every)
	n := s.Requests()
	time.Sleep(5 * every)
	if m := s.Requests(); m != n {
		t.Fatalf("JWKS requests went from %d to %d after cancel", n, m)
	}
}

func flood(t *testing.T, s *applefake.Server, v *apple.Verifier, n int, code string) {
	t.Helper()
	toks := make([]string, n)
	for i := range toks {
		toks[i] = s.MintWith(claims(), applefake.Sign{Kid: fmt.Sprint("bogus-", i)})
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, tok := range toks {
		wg.Go(func() { _, errs[i] = v.Verify(context.Background(), tok) })
	}
	wg.Wait()
	for _, err := range errs {
		wantCode(t, err, code)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
