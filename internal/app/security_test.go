package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/auth"
	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/store"
)

// Every protected route refuses a missing, malformed, forged, expired and
// revoked token with the contract's bodies, and answers another user's ids
// exactly as missing ones.
func TestEveryRouteRefusesBadTokensAndForeignIDs(t *testing.T) {
	s := newStack(t)
	owner, ownerID := s.signIn(t, uniqueSub("victim"), "")
	intruder, _ := s.signIn(t, uniqueSub("intruder"), "")
	c := newConversation(t, ownerID)
	revoked, _ := s.signIn(t, uniqueSub("revoked"), "")
	if r := s.call(t, "POST", "/auth/logout", "", revoked); r.status != 204 {
		t.Fatalf("logout: %d", r.status)
	}

	ring := s.app.Config.JWTKeys
	now := time.Now()
	expired, err := auth.NewIssuer(ring).Sign(auth.Claims{UserID: ownerID, SessionID: "x", Generation: 1,
		IssuedAt: now.Add(-48 * time.Hour), ExpiresAt: now.Add(-24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(owner, ".")
	forged := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))

	routes := []struct{ method, path, body string }{
		{"GET", "/chat", ""},
		{"GET", "/chat/" + c.ID, ""},
		{"DELETE", "/chat/" + c.ID, ""},
		{"POST", "/chat/" + c.ID + "/events", `{"content":"x"}`},
		{"POST", "/chat/" + c.ID + "/cancel", ""},
		{"POST", "/chat", `{"message":"x"}`},
		{"POST", "/chat/" + c.ID, `{"message":"x"}`},
		{"POST", "/chat/stream", `{"message":"x"}`},
		{"POST", "/chat/" + c.ID + "/stream", `{"message":"x"}`},
		{"POST", "/devices", `{"deviceToken":"` + strings.Repeat("ab", 32) + `"}`},
		{"DELETE", "/devices/" + strings.Repeat("ab", 32), ""},
		{"POST", "/auth/logout", ""},
		{"DELETE", "/auth/account", ""},
	}
	tokens := []struct{ name, bearer, want string }{
		{"no token", "", `{"error":"Missing authorization header"}`},
		{"garbage", "not-a-jwt", `{"error":"Invalid or expired token"}`},
		{"forged signature", forged, `{"error":"Invalid or expired token"}`},
		{"expired", expired, `{"error":"Invalid or expired token"}`},
		{"revoked", revoked, `{"error":"Invalid or expired token"}`},
	}
	for _, rt := range routes {
		for _, tk := range tokens {
			r := s.call(t, rt.method, rt.path, rt.body, tk.bearer)
			if r.status != 401 || r.body != tk.want {
				t.Errorf("%s %s with %s: %d %s", rt.method, rt.path, tk.name, r.status, r.body)
			}
		}
		// Another user's conversation id: the same 404 as a missing one.
		if strings.Contains(rt.path, c.ID) {
			r := s.call(t, rt.method, rt.path, rt.body, intruder)
			if r.status != 404 || r.body != `{"error":"Conversation not found"}` {
				t.Errorf("%s %s by another user: %d %s", rt.method, rt.path, r.status, r.body)
			}
		}
	}
	// The owner's conversation is intact.
	st := store.New(storetest.DB(), store.Options{Table: storetest.TableName()})
	if _, err := st.Conversation(context.Background(), ownerID, c.ID); err != nil {
		t.Fatalf("the owner's conversation: %v", err)
	}
}
