package app_test

import (
	"slices"
	"strconv"
	"testing"
)

// The turn limit is counted in the transaction that starts a turn, and a
// turn refused for another reason (here: another user's conversation)
// still counts, so nobody can make unlimited tries.
func TestTurnLimitCountsEveryTry(t *testing.T) {
	s := newStack(t, "RATE_LIMIT_TURN", "3/1h")
	tok, _ := s.signIn(t, uniqueSub("tries"), "")
	_, other := s.signIn(t, uniqueSub("owner"), "")
	foreign := newConversation(t, other)
	for range 2 {
		if r, _ := s.stream(t, "/chat/"+foreign.ID+"/stream", `{"message":"hi"}`, tok); r.status != 404 {
			t.Fatalf("a turn on another user's conversation: %d %s", r.status, r.body)
		}
	}
	r, _ := s.stream(t, "/chat/stream", `{"message":"hi"}`, tok)
	if r.status != 200 || r.header.Get("X-RateLimit-Limit") != "3" ||
		!slices.Contains([]string{"0", "1"}, r.header.Get("X-RateLimit-Remaining")) {
		t.Fatalf("the third try: %d, headers %v", r.status, r.header)
	}
	r, _ = s.stream(t, "/chat/stream", `{"message":"hi"}`, tok)
	if r.status != 429 || r.body != `{"error":"Too many requests. Please slow down."}` {
		t.Fatalf("the fourth try: %d %s", r.status, r.body)
	}
	h := r.header
	if h.Get("X-RateLimit-Remaining") != "0" || h.Get("X-RateLimit-Reset") == "" {
		t.Fatalf("429 headers %v", h)
	}
	if ra, _ := strconv.Atoi(h.Get("Retry-After")); ra < 1 || ra > 3600 {
		t.Fatalf("Retry-After %q", h.Get("Retry-After"))
	}
}

// A message the app records is counted by the transaction that writes it:
// one over the limit is refused and not kept.
func TestWriteLimitCountsInTheAppend(t *testing.T) {
	s := newStack(t, "RATE_LIMIT_WRITE", "2/1h")
	tok, uid := s.signIn(t, uniqueSub("events"), "")
	c := newConversation(t, uid)
	for i := range 3 {
		r := s.call(t, "POST", "/chat/"+c.ID+"/events", `{"content":"denied `+strconv.Itoa(i)+`"}`, tok)
		want := 200
		if i == 2 {
			want = 429
		}
		if r.status != want || r.header.Get("X-RateLimit-Limit") != "2" {
			t.Fatalf("append %d: %d %s, headers %v", i, r.status, r.body, r.header)
		}
	}
	_, msgs, _ := appDetail(t, s.call(t, "GET", "/chat/"+c.ID, "", tok))
	if len(msgs) != 3 {
		t.Fatalf("%d messages, want the first and the two allowed", len(msgs))
	}
}

// A read runs beside its count, and the answer of a refused one is
// dropped: the client gets the 429, never the data.
func TestARefusedReadShowsNothing(t *testing.T) {
	s := newStack(t, "RATE_LIMIT_READ", "1/1h")
	tok, uid := s.signIn(t, uniqueSub("reads"), "")
	c := newConversation(t, uid)
	if r := s.call(t, "GET", "/chat/"+c.ID, "", tok); r.status != 200 || r.header.Get("X-RateLimit-Remaining") != "0" {
		t.Fatalf("the first read: %d, headers %v", r.status, r.header)
	}
	for _, path := range []string{"/chat/" + c.ID, "/chat"} {
		r := s.call(t, "GET", path, "", tok)
		if r.status != 429 || r.body != `{"error":"Too many requests. Please slow down."}` || r.header.Get("Retry-After") == "" {
			t.Fatalf("%s over the limit: %d %s, headers %v", path, r.status, r.body, r.header)
		}
	}
}

// A request refused before anything is written (a malformed body) counts
// too, on every route that counts inside its own transaction.
func TestMalformedRequestsCount(t *testing.T) {
	s := newStack(t, "RATE_LIMIT_WRITE", "2/1h", "RATE_LIMIT_TURN", "2/1h")
	tok, uid := s.signIn(t, uniqueSub("malformed"), "")
	c := newConversation(t, uid)
	for _, k := range []struct{ path, bad, good string }{
		{"/chat/" + c.ID + "/events", `{"content":`, `{"content":"x"}`},
		{"/chat/stream", `{"message":"hi","allowedTools":["Nope"]}`, `{"message":"hi"}`},
		{"/chat", `{"message":"hi","allowedTools":[]}`, `{"message":"hi"}`},
	} {
		if k.path == "/chat" {
			s = newStack(t, "RATE_LIMIT_TURN", "2/1h")
			tok, _ = s.signIn(t, uniqueSub("malformed"), "")
		}
		for range 2 {
			if r := s.call(t, "POST", k.path, k.bad, tok); r.status != 400 {
				t.Fatalf("%s, malformed: %d %s", k.path, r.status, r.body)
			}
		}
		if r := s.call(t, "POST", k.path, k.good, tok); r.status != 429 {
			t.Fatalf("%s, after two malformed tries: %d %s", k.path, r.status, r.body)
		}
	}
}
