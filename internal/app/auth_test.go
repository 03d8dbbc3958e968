package app_test

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/applefake"
)

// signIn goes through POST /auth as the app does and returns the token.
func (s *stack) signIn(t *testing.T, sub, email string) (token, userID string) {
	t.Helper()
	remember(sub, email)
	idt := s.apple.Mint(applefake.Claims{Subject: sub, Email: email, EmailVerified: "true"})
	r := s.call(t, "POST", "/auth", fmt.Sprintf(`{"identityToken":%q,"deviceToken":%q}`, idt, strings.Repeat("0f", 32)), "")
	if r.status != 200 {
		t.Fatalf("POST /auth: %d %s", r.status, r.body)
	}
	m := r.json(t)
	if len(m) != 3 || m["expiresIn"] != float64(86400) {
		t.Fatalf("grant shape: %s", r.body)
	}
	return m["sessionToken"].(string), m["userId"].(string)
}

func TestAuthRoutes(t *testing.T) {
	s := newStack(t)
	tok, _ := s.signIn(t, "001122.route."+strconv.FormatInt(time.Now().UnixNano(), 10), "route@example.com")

	r := s.call(t, "POST", "/auth/refresh", "", tok)
	if r.status != 200 || r.json(t)["sessionToken"] == tok {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
	newTok := r.json(t)["sessionToken"].(string)

	if r := s.call(t, "POST", "/auth/logout", "", newTok); r.status != 204 || r.body != "" {
		t.Fatalf("logout: %d %q", r.status, r.body)
	}
	if r := s.call(t, "POST", "/auth/refresh", "", newTok); r.status != 401 || r.body != `{"error":"Token refresh failed"}` {
		t.Fatalf("refresh after logout: %d %s", r.status, r.body)
	}

	tok, _ = s.signIn(t, "001122.delete."+strconv.FormatInt(time.Now().UnixNano(), 10), "")
	if r := s.call(t, "DELETE", "/auth/account", "", tok); r.status != 204 {
		t.Fatalf("delete account: %d %s", r.status, r.body)
	}
	if r := s.call(t, "DELETE", "/auth/account", "", tok); r.status != 401 || r.body != `{"error":"Invalid or expired token"}` {
		t.Fatalf("delete again: %d %s", r.status, r.body)
	}
}

func TestAuthErrors(t *testing.T) {
	s := newStack(t)
	good := s.apple.Mint(applefake.Claims{Subject: "001122.errors"})
	cases := []struct {
		name, method, path, body, bearer string
		status                           int
		body2                            string
	}{
		{"empty body", "POST", "/auth", "", "", 400, `{"error":"Request body is empty; a JSON object is required."}`},
		{"malformed", "POST", "/auth", `{"identityToken":`, "", 400, `{"error":"Request body is not valid JSON."}`},
		{"missing token", "POST", "/auth", `{}`, "", 400, `{"error":"Field \"identityToken\" is required."}`},
		{"wrong type", "POST", "/auth", `{"identityToken":1}`, "", 400, `{"error":"Field \"identityToken\" must be of type string."}`},
		{"unknown field", "POST", "/auth", fmt.Sprintf(`{"identityToken":%q,"admin":true}`, good), "", 400, `{"error":"Unknown field \"admin\"."}`},
		{"bad device token", "POST", "/auth", fmt.Sprintf(`{"identityToken":%q,"deviceToken":"ABCD"}`, good), "", 400,
			`{"error":"Field \"deviceToken\" must be the device token in lowercase hex."}`},
		{"forged identity token", "POST", "/auth", `{"identityToken":"a.b.c"}`, "", 401, `{"error":"Authentication failed"}`},
		{"refresh without bearer", "POST", "/auth/refresh", "", "", 401, `{"error":"Missing authorization header"}`},
		{"refresh with junk", "POST", "/auth/refresh", "", "junk", 401, `{"error":"Token refresh failed"}`},
		{"logout without bearer", "POST", "/auth/logout", "", "", 401, `{"error":"Missing authorization header"}`},
		{"wrong method", "GET", "/auth/refresh", "", "", 404, `{"error":"Not found"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := s.call(t, c.method, c.path, c.body, c.bearer)
			if r.status != c.status || r.body != c.body2 {
				t.Fatalf("got %d %s, want %d %s", r.status, r.body, c.status, c.body2)
			}
		})
	}
}

func TestSignInWhenAppleIsDownIs503(t *testing.T) {
	s := newStack(t)
	idt := s.apple.Mint(applefake.Claims{Subject: "001122.down"})
	s.apple.SetMode(applefake.Unavailable)
	r := s.call(t, "POST", "/auth", fmt.Sprintf(`{"identityToken":%q}`, idt), "")
	if r.status != 503 || !strings.Contains(r.body, "temporarily unavailable") {
		t.Fatalf("got %d %s", r.status, r.body)
	}
}

func TestAllowListRefusalIs403(t *testing.T) {
	s := newStack(t, "ALLOW_OPEN_SIGNUP", "false", "APPROVED_EMAILS", "boss@example.com")
	idt := s.apple.Mint(applefake.Claims{Subject: "001122.stranger", Email: "stranger@example.com", EmailVerified: true})
	r := s.call(t, "POST", "/auth", fmt.Sprintf(`{"identityToken":%q}`, idt), "")
	if r.status != 403 || r.body != `{"error":"User not authorized"}` {
		t.Fatalf("got %d %s", r.status, r.body)
	}
}

// Concurrent sign-ins from one address get exactly the limit through, and
// a forged X-Forwarded-For does not buy a fresh bucket.
func TestAuthRateLimitIsExactAcrossRequests(t *testing.T) {
	const limit = 5
	// An hour's window: a minute's could turn over between the requests
	// of a loaded machine and let more through.
	s := newStack(t, "RATE_LIMIT_AUTH", fmt.Sprintf("%d/1h", limit))
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	var limited response
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := s.call(t, "POST", "/auth", `{"identityToken":"a.b.c"}`, "", "X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i))
			mu.Lock()
			statuses[r.status]++
			if r.status == 429 {
				limited = r
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if statuses[401] != limit || statuses[429] != 20-limit {
		t.Fatalf("statuses %v, want %d passed (401) and %d limited", statuses, limit, 20-limit)
	}
	if limited.body != `{"error":"Too many requests. Please slow down."}` {
		t.Fatalf("429 body %s", limited.body)
	}
	h := limited.header
	if h.Get("X-RateLimit-Limit") != strconv.Itoa(limit) || h.Get("X-RateLimit-Remaining") != "0" ||
		h.Get("X-RateLimit-Reset") == "" || h.Get("Retry-After") == "" {
		t.Fatalf("429 headers %v", h)
	}
	if ra, _ := strconv.Atoi(h.Get("Retry-After")); ra < 1 || ra > 3600 {
		t.Fatalf("Retry-After %q", h.Get("Retry-After"))
	}
}
