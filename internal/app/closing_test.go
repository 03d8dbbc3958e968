package app_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/audit"
	"github.com/ovrlrd/cloud/internal/auth"
	"github.com/ovrlrd/cloud/internal/devkit/applefake"
	"github.com/ovrlrd/cloud/internal/devkit/gateway"
	"github.com/ovrlrd/cloud/internal/logs"
)

// twin is another instance of s's functions, as a second Lambda execution
// environment is: the same configuration and table, its own session cache.
func (s *stack) twin(t *testing.T) *stack {
	t.Helper()
	a, err := gateway.NewStack(context.Background(), s.app.Config, logs.New(&allLogs, s.app.Config.LogLevel), gateway.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return &stack{Server: srv, app: a, apple: s.apple, calls: s.calls, s3: s.s3}
}

// signInDirect starts a session without going through POST /auth, so its
// per-address limit is left alone.
func (s *stack) signInDirect(t *testing.T, sub string) (token, userID string) {
	t.Helper()
	remember(sub)
	g, err := s.app.Accounts.SignIn(context.Background(), auth.SignInRequest{
		IdentityToken: s.apple.Mint(applefake.Claims{Subject: sub}),
	}, audit.Client{IP: "192.0.2.7"})
	if err != nil {
		t.Fatal(err)
	}
	remember(g.SessionToken)
	return g.SessionToken, g.UserID
}

// Deleting an account stops its writes at once on every instance: another
// instance that still trusts the session (reads work there until the
// session check interval ends) cannot start a turn, append an event or
// register a device, and nothing is written for the deleted account.
func TestDeletedAccountWritesNothingOnAnotherInstance(t *testing.T) {
	s := newStack(t)
	other := s.twin(t)
	tok, uid := s.signIn(t, uniqueSub("closing"), "")
	c := newConversation(t, uid)
	if r := other.call(t, "GET", "/chat", "", tok); r.status != 200 {
		t.Fatalf("the other instance's first read: %d %s", r.status, r.body)
	}
	if r := s.call(t, "DELETE", "/auth/account", "", tok); r.status != 204 {
		t.Fatalf("delete account: %d %s", r.status, r.body)
	}
	if r := other.call(t, "GET", "/chat", "", tok); r.status != 200 {
		t.Fatalf("a read within the check interval: %d %s", r.status, r.body)
	}
	device := strings.Repeat("9a", 32)
	for _, w := range []struct{ method, path, body string }{
		{"POST", "/chat/stream", `{"message":"start a turn"}`},
		{"POST", "/chat", `{"message":"start a buffered turn"}`},
		{"POST", "/chat/" + c.ID + "/events", `{"content":"✗ Denied: Bash"}`},
		{"POST", "/devices", `{"deviceToken":"` + device + `"}`},
	} {
		r := other.call(t, w.method, w.path, w.body, tok)
		if r.status != 401 || r.body != `{"error":"Invalid or expired token"}` {
			t.Errorf("%s %s: %d %s", w.method, w.path, r.status, r.body)
		}
	}
	// The deletion finishes in the background.
	s.app.Close()
	if n := partitionSize(t, "USER#"+uid); n != 1 { // the tombstone
		t.Errorf("%d items under the deleted user, want only its tombstone", n)
	}
	for _, pk := range []string{"CONV#" + c.ID, "TOKEN#" + device} {
		if n := partitionSize(t, pk); n != 0 {
			t.Errorf("%d items under %s", n, pk[:6])
		}
	}
}

// The per-address limit guards sign-in only. An address whose sign-in
// budget is spent can still refresh, sign out and delete an account;
// refresh is limited per session, sign-out and deletion per user.
func TestAuthLimitsFollowWhatTheCallerHolds(t *testing.T) {
	const limit = 3
	s := newStack(t, "RATE_LIMIT_AUTH", fmt.Sprintf("%d/24h", limit), "SESSION_CHECK_INTERVAL", "60s")
	junk := `{"identityToken":"a.b.c"}`
	for range limit {
		if r := s.call(t, "POST", "/auth", junk, ""); r.status != 401 {
			t.Fatalf("sign-in within the limit: %d %s", r.status, r.body)
		}
	}
	if r := s.call(t, "POST", "/auth", junk, ""); r.status != 429 {
		t.Fatalf("sign-in past the limit: %d %s", r.status, r.body)
	}
	// A token that is not ours is refused before any counting.
	for range limit + 1 {
		if r := s.call(t, "POST", "/auth/refresh", "", "junk"); r.status != 401 || r.body != `{"error":"Token refresh failed"}` {
			t.Fatalf("refresh with a forged token: %d %s", r.status, r.body)
		}
	}

	// Refresh: per session, whichever of its tokens is presented.
	tok, _ := s.signInDirect(t, uniqueSub("refresh"))
	for i := range limit {
		r := s.call(t, "POST", "/auth/refresh", "", tok)
		if r.status != 200 {
			t.Fatalf("refresh %d: %d %s", i, r.status, r.body)
		}
		tok = r.json(t)["sessionToken"].(string)
	}
	if r := s.call(t, "POST", "/auth/refresh", "", tok); r.status != 429 {
		t.Fatalf("refresh past the session's limit: %d %s", r.status, r.body)
	}
	if second, _ := s.signInDirect(t, uniqueSub("refresh")); s.call(t, "POST", "/auth/refresh", "", second).status != 200 {
		t.Fatal("another session was limited")
	}

	// Sign-out: per user.
	sub := uniqueSub("logout")
	var sessions []string
	for range limit + 1 {
		tok, _ := s.signInDirect(t, sub)
		sessions = append(sessions, tok)
	}
	for i, tok := range sessions[:limit] {
		if r := s.call(t, "POST", "/auth/logout", "", tok); r.status != 204 {
			t.Fatalf("logout %d: %d %s", i, r.status, r.body)
		}
	}
	if r := s.call(t, "POST", "/auth/logout", "", sessions[limit]); r.status != 429 {
		t.Fatalf("logout past the user's limit: %d %s", r.status, r.body)
	}

	// Deletion: per user. The sessions this instance still trusts after
	// the deletion each count one refused attempt.
	sub = uniqueSub("delete")
	sessions = nil
	for range limit + 1 {
		tok, _ := s.signInDirect(t, sub)
		if r := s.call(t, "GET", "/chat", "", tok); r.status != 200 {
			t.Fatalf("read: %d %s", r.status, r.body)
		}
		sessions = append(sessions, tok)
	}
	if r := s.call(t, "DELETE", "/auth/account", "", sessions[0]); r.status != 204 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	for i, tok := range sessions[1:limit] {
		if r := s.call(t, "DELETE", "/auth/account", "", tok); r.status != 401 {
			t.Fatalf("delete again %d: %d %s", i, r.status, r.body)
		}
	}
	if r := s.call(t, "DELETE", "/auth/account", "", sessions[limit]); r.status != 429 {
		t.Fatalf("delete past the user's limit: %d %s", r.status, r.body)
	}

	// None of it touched another user from the same address.
	other, _ := s.signInDirect(t, uniqueSub("other"))
	if r := s.call(t, "POST", "/auth/logout", "", other); r.status != 204 {
		t.Fatalf("another user's logout: %d %s", r.status, r.body)
	}
	other, _ = s.signInDirect(t, uniqueSub("other"))
	if r := s.call(t, "DELETE", "/auth/account", "", other); r.status != 204 {
		t.Fatalf("another user's deletion: %d %s", r.status, r.body)
	}
}

// A device token that could never have been registered is a 400, not a
// database error.
func TestDeleteDeviceRefusesMalformedTokens(t *testing.T) {
	s := newStack(t)
	tok, _ := s.signIn(t, uniqueSub("devtoken"), "")
	for _, bad := range []string{strings.Repeat("a", 5000), strings.Repeat("ab", 2500), strings.Repeat("AB", 32), strings.Repeat("zz", 32), "ab"} {
		r := s.call(t, "DELETE", "/devices/"+bad, "", tok)
		if r.status != 400 || r.body != `{"error":"The device token must be lowercase hex."}` {
			t.Errorf("DELETE /devices/%.8s… (%d chars): %d %s", bad, len(bad), r.status, r.body)
		}
	}
}
