package apple_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ovrlrd/cloud/internal/apple"
	"github.com/ovrlrd/cloud/internal/devkit/applefake"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// With the set hanging, a fetch in NewVerifier would wait out the HTTP
// timeout and be counted.
func TestNewVerifierDoesNoIO(t *testing.T) {
	t.Parallel()
	s := fake(t)
	s.SetMode(applefake.Hang)
	verifier(t, apple.Options{JWKSURL: s.URL})
	if n := s.Requests(); n != 0 {
		t.Fatalf("JWKS requests = %d, want 0 before the first Verify", n)
	}
}

func TestVerifyJWKSDownAtConstructionThenRecovers(t *testing.T) {
	t.Parallel()
	s := fake(t)
	s.SetMode(applefake.Unavailable)
	v := verifier(t, apple.Options{JWKSURL: s.URL})
	tok := s.Mint(claims())
	verifyCode(t, v, tok, ovrlrd.EUNAVAILABLE)
	verifyCode(t, v, tok, ovrlrd.EUNAVAILABLE)
	s.SetMode(applefake.Up)
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
			_, err := v.Verify(context.Background(), s.Mint(claims()), "")
			took := time.Since(start)
			t.Logf("EUNAVAILABLE after %v", took)
			wantCode(t, err, ovrlrd.EUNAVAILABLE)
			if msg := ovrlrd.ErrorMessage(err); msg != "Sign in with Apple is temporarily unavailable. Please try again." {
				t.Fatalf("user message = %q", msg)
			}
		})
	}
}

// A caller's deadline shorter than the HTTP timeout bounds its wait: with
// the set hanging and an HTTP timeout of an hour, only the deadline can end
// Verify.
func TestVerifyJWKSOutageHonoursContext(t *testing.T) {
	t.Parallel()
	s := fake(t)
	s.SetMode(applefake.Hang)
	v := verifier(t, apple.Options{JWKSURL: s.URL, HTTPClient: patientClient()})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var err error
	returns(t, "Verify past its caller's deadline", func() { _, err = v.Verify(ctx, s.Mint(claims()), "") })
	wantCode(t, err, ovrlrd.EUNAVAILABLE)
}

// The HTTP timeout is an hour: an unknown kid's refresh during a hanging
// outage is cut short by the rate limiter's wait, not by that timeout.
func TestVerifyCachedKeysSurviveOutage(t *testing.T) {
	t.Parallel()
	for name, mode := range map[string]applefake.Mode{"503": applefake.Unavailable, "timeout": applefake.Hang} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := fake(t)
			v := warm(t, s, apple.Options{HTTPClient: patientClient()})
			s.SetMode(mode)
			mustVerify(t, v, s.Mint(claims()))
			// Apple may have rotated, and the set cannot be read to know.
			var took time.Duration
			returns(t, "Verify of an unknown kid during the outage", func() {
				took = verifyCode(t, v, s.MintWith(claims(), applefake.Sign{Kid: "not-published"}), ovrlrd.EUNAVAILABLE)
			})
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
	verifyCode(t, v, s.MintWith(claims(), applefake.Sign{Kid: "not-published"}), ovrlrd.EUNAUTHORIZED)
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
	_, err := v.Verify(context.Background(), s.MintWith(claims(), applefake.Sign{Kid: old}), "")
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

// During an outage a rotated key is EUNAVAILABLE; once the set is back, the
// next Verify waits for the refresh window (shorter than the limiter's
// longest wait) and refreshes, and the rotated key works.
func TestVerifyRecoversAfterRefreshOutage(t *testing.T) {
	t.Parallel()
	const window = 200 * time.Millisecond
	s := fake(t)
	v := warm(t, s, apple.WithWindows(apple.Options{}, time.Hour, window))
	s.SetMode(applefake.Unavailable)
	s.Rotate()
	verifyCode(t, v, s.Mint(claims()), ovrlrd.EUNAVAILABLE)
	s.SetMode(applefake.Up)
	mustVerify(t, v, s.Mint(claims()))
}

// Not parallel: the goroutines counted are this test's alone. Connections
// are not kept, so none of their goroutines outlive a fetch.
func TestCancelledContextStopsBackgroundRefresh(t *testing.T) {
	const every = 30 * time.Millisecond
	s := fake(t)
	others := goleak.IgnoreCurrent()
	ctx, cancel := context.WithCancel(context.Background())
	v, err := apple.NewVerifier(ctx, apple.WithWindows(apple.Options{JWKSURL: s.URL, Audiences: []string{applefake.Audience},
		HTTPClient: oneShotClient()}, every, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	mustVerify(t, v, s.Mint(claims()))
	waitFor(t, func() bool { return s.Requests() >= 3 })
	cancel()
	noGoroutinesLeft(t, others)
}

// oneShotClient closes each connection after its response.
func oneShotClient() *http.Client {
	return &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
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
		wg.Go(func() { _, errs[i] = v.Verify(context.Background(), tok, "") })
	}
	wg.Wait()
	for _, err := range errs {
		wantCode(t, err, code)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
