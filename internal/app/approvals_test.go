package app_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ovrlrd/cloud/internal/app/chatfn"
	"github.com/ovrlrd/cloud/internal/audit"
	"github.com/ovrlrd/cloud/internal/devkit/gateway"
	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/store"
)

// approvalStore is the stack's table, for writing what a waiting turn
// writes.
func approvalStore() *store.Store {
	return store.New(storetest.DB(), store.Options{Table: storetest.TableName()})
}

// askApproval records a request of turn in conv, as a turn that waits on
// its user does, expiring after ttl (a negative ttl: already expired).
func askApproval(t *testing.T, conv, userID, turn string, ttl time.Duration) ovrlrd.Approval {
	t.Helper()
	a := ovrlrd.Approval{
		ID: uuid.NewString(), ConversationID: conv, UserID: userID, TurnID: turn,
		ToolName: "Bash", ToolInput: json.RawMessage(`{"command":"npm test","timeout":5}`),
		ExpiresAt: ovrlrd.Timestamp(time.Now().Add(ttl)),
	}
	if err := approvalStore().CreateApproval(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	return a
}

// approvalEvents are the audit trail's answered approvals of userID.
func approvalEvents(t *testing.T, userID string) []string {
	t.Helper()
	evs, err := storetest.AuditEvents(context.Background(), userID, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		if e.Action == audit.ApprovalAnswered {
			out = append(out, e.Reason)
		}
	}
	return out
}

// POST /chat/{id}/approvals/{requestId}: the owner's answer is taken once
// and audited once; a repeat gets the same answer, another answer 409, a
// late one 410; whatever is missing, foreign or malformed is the same 404,
// and a body that is not an answer 400.
func TestAnswerApprovalRoute(t *testing.T) {
	s := newStack(t)
	tok, uid := s.signIn(t, uniqueSub("approver"), "")
	intruder, intruderID := s.signIn(t, uniqueSub("approval-intruder"), "")
	c := newConversation(t, uid)
	turn := rand.Text()
	path := func(conv, id string) string { return "/chat/" + conv + "/approvals/" + id }

	a := askApproval(t, c.ID, uid, turn, time.Hour)
	ok := `{"requestId":"` + a.ID + `","decision":"allow"}`
	for _, name := range []string{"the answer", "the same answer again"} {
		if r := s.call(t, "POST", path(c.ID, a.ID), `{"decision":"allow"}`, tok); r.status != 200 || r.body != ok {
			t.Fatalf("%s: %d %s", name, r.status, r.body)
		}
	}
	if r := s.call(t, "POST", path(c.ID, a.ID), `{"decision":"deny","message":"no"}`, tok); r.status != 409 ||
		r.body != `{"error":"This request was already answered otherwise."}` {
		t.Fatalf("another answer: %d %s", r.status, r.body)
	}
	if got, _ := approvalStore().Approval(t.Context(), c.ID, a.ID); got.Decision != ovrlrd.DecisionAllow {
		t.Fatalf("the request after the answers: %+v", got)
	}

	// A denial with a message for Claude, at the longest a message may be.
	msg := strings.Repeat("é", 2000)
	b := askApproval(t, c.ID, uid, turn, time.Hour)
	if r := s.call(t, "POST", path(c.ID, b.ID), `{"decision":"deny","message":"`+msg+`"}`, tok); r.status != 200 ||
		r.body != `{"requestId":"`+b.ID+`","decision":"deny"}` {
		t.Fatalf("a denial with a message: %d %s", r.status, r.body)
	}
	if got, _ := approvalStore().Approval(t.Context(), c.ID, b.ID); got.Decision != ovrlrd.DecisionDeny || got.Message != msg {
		t.Fatalf("the denial as the turn reads it: %s, %d characters", got.Decision, len([]rune(got.Message)))
	}

	// Too late: past its expiry, or once its turn stopped waiting.
	expired := askApproval(t, c.ID, uid, turn, -time.Second)
	closed := askApproval(t, c.ID, uid, turn, time.Hour)
	if _, err := approvalStore().CloseApproval(t.Context(), c.ID, closed.ID); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{expired.ID, closed.ID} {
		if r := s.call(t, "POST", path(c.ID, id), `{"decision":"allow"}`, tok); r.status != 410 ||
			r.body != `{"error":"This request no longer waits for an answer: it expired, or its turn ended."}` {
			t.Fatalf("a late answer: %d %s", r.status, r.body)
		}
	}

	// Not found, all alike, and nothing answered: another user's request
	// (by its own conversation, or through the intruder's), a request of
	// another conversation, a missing request or conversation, malformed ids.
	pending := askApproval(t, c.ID, uid, turn, time.Hour)
	other := newConversation(t, intruderID)
	theirs := askApproval(t, other.ID, intruderID, rand.Text(), time.Hour)
	notFound := `{"error":"Approval request not found"}`
	for _, k := range []struct {
		name, tok, path string
	}{
		{"another user's request", intruder, path(c.ID, pending.ID)},
		{"another user's request under the intruder's conversation", intruder, path(other.ID, pending.ID)},
		{"a request of another user's conversation", tok, path(other.ID, theirs.ID)},
		{"a request under another conversation", tok, path(other.ID, pending.ID)},
		{"a missing request", tok, path(c.ID, uuid.NewString())},
		{"a missing conversation", tok, path(uuid.NewString(), pending.ID)},
		{"a malformed request id", tok, path(c.ID, "not-an-id")},
		{"a malformed conversation id", tok, path("not-an-id", pending.ID)},
	} {
		if r := s.call(t, "POST", k.path, `{"decision":"allow"}`, k.tok); r.status != 404 || r.body != notFound {
			t.Errorf("%s: %d %s", k.name, r.status, r.body)
		}
	}
	for _, x := range []ovrlrd.Approval{pending, theirs} {
		if got, _ := approvalStore().Approval(t.Context(), x.ConversationID, x.ID); got.Decision != "" {
			t.Fatalf("a refused answer was kept: %+v", got)
		}
	}

	// Bodies that are no answer.
	for _, k := range []struct{ name, body, want string }{
		{"empty", ``, `{"error":"Request body is empty; a JSON object is required."}`},
		{"no decision", `{}`, `{"error":"Field \"decision\" is required."}`},
		{"a null decision", `{"decision":null}`, `{"error":"Field \"decision\" is required."}`},
		{"neither", `{"decision":"maybe"}`, `{"error":"Field \"decision\" must be \"allow\" or \"deny\"."}`},
		{"upper case", `{"decision":"ALLOW"}`, `{"error":"Field \"decision\" must be \"allow\" or \"deny\"."}`},
		{"a number", `{"decision":1}`, `{"error":"Field \"decision\" must be of type string."}`},
		{"an unknown field", `{"decision":"allow","always":true}`, `{"error":"Unknown field \"always\"."}`},
		{"a message too long", `{"decision":"deny","message":"` + msg + `x"}`, `{"error":"Field \"message\" must be at most 2000 characters."}`},
		{"a message not text", `{"decision":"deny","message":["x"]}`, `{"error":"Field \"message\" must be of type string."}`},
		{"two objects", `{"decision":"allow"} {}`, `{"error":"Request body must contain a single JSON object."}`},
	} {
		if r := s.call(t, "POST", path(c.ID, pending.ID), k.body, tok); r.status != 400 || r.body != k.want {
			t.Errorf("%s: %d %s", k.name, r.status, r.body)
		}
	}
	if got, _ := approvalStore().Approval(t.Context(), c.ID, pending.ID); got.Decision != "" {
		t.Fatalf("a bad body answered: %+v", got)
	}

	// The key and the token, as on every other route.
	for _, k := range []struct {
		name, tok, want string
		headers         []string
	}{
		{"no token", "", `{"error":"Missing authorization header"}`, nil},
		{"a malformed token", "not-a-jwt", `{"error":"Invalid or expired token"}`, nil},
		{"no API key", tok, `{"error":"Invalid API key"}`, []string{"X-API-Key", "-"}},
		{"a wrong API key", tok, `{"error":"Invalid API key"}`, []string{"X-API-Key", "wrong-api-key-0123456789"}},
	} {
		if r := s.call(t, "POST", path(c.ID, pending.ID), `{"decision":"allow"}`, k.tok, k.headers...); r.status != 401 || r.body != k.want {
			t.Errorf("%s: %d %s", k.name, r.status, r.body)
		}
	}
	if got, _ := approvalStore().Approval(t.Context(), c.ID, pending.ID); got.Decision != "" {
		t.Fatalf("an unauthenticated answer was kept: %+v", got)
	}

	// The trail has each answer taken, once, and neither the message nor
	// the tool's input; refusals leave nothing, for either user.
	want := []string{
		"deny conversation=" + c.ID + " request=" + b.ID + ` tool="Bash"`,
		"allow conversation=" + c.ID + " request=" + a.ID + ` tool="Bash"`,
	}
	if got := approvalEvents(t, uid); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the owner's trail:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := approvalEvents(t, intruderID); len(got) != 0 {
		t.Fatalf("the intruder's trail: %q", got)
	}
}

// Answers count in a bucket of their own, with RATE_LIMIT_WRITE's numbers:
// past it 429, and the user's other writes are untouched.
func TestAnswerApprovalLimit(t *testing.T) {
	s := newStack(t, "RATE_LIMIT_WRITE", "2/1h")
	tok, uid := s.signIn(t, uniqueSub("approval-limit"), "")
	c := newConversation(t, uid)
	a := askApproval(t, c.ID, uid, rand.Text(), time.Hour)
	for i := range 2 { // a repeat counts as any try does
		if r := s.call(t, "POST", "/chat/"+c.ID+"/approvals/"+a.ID, `{"decision":"allow"}`, tok); r.status != 200 || r.header.Get("X-RateLimit-Limit") != "2" {
			t.Fatalf("answer %d: %d %s, headers %v", i, r.status, r.body, r.header)
		}
	}
	r := s.call(t, "POST", "/chat/"+c.ID+"/approvals/"+a.ID, `{"decision":"allow"}`, tok)
	if r.status != 429 || r.body != `{"error":"Too many requests. Please slow down."}` || r.header.Get("Retry-After") == "" {
		t.Fatalf("the third answer: %d %s, headers %v", r.status, r.body, r.header)
	}
	if r := s.call(t, "POST", "/chat/"+c.ID+"/events", `{"content":"x"}`, tok); r.status != 200 {
		t.Fatalf("a write after the answers: %d %s", r.status, r.body)
	}
}

// startRecorder is a buffered turn's starter that keeps the turns it is
// given and starts none.
type startRecorder struct {
	mu    sync.Mutex
	turns []ovrlrd.Turn
}

func (r *startRecorder) Start(_ context.Context, j ovrlrd.Turn) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.turns = append(r.turns, j)
	return errors.New("not started in this test")
}

// A turn asks for live approvals with "approvals":"live"; absent or null
// it is as before, and any other value is refused before anything starts.
func TestLiveApprovalsOptIn(t *testing.T) {
	started := &startRecorder{}
	s := newStackWith(t, gateway.Options{Chat: chatfn.Options{Starter: started}}, "RATE_LIMIT_TURN", "1000/1m")
	tok, uid := s.signIn(t, uniqueSub("opt-in"), "")
	c := newConversation(t, uid)
	refused := `{"error":"Field \"approvals\" must be \"live\"."}`
	for _, path := range []string{"/chat/stream", "/chat/" + c.ID + "/stream", "/chat", "/chat/" + c.ID} {
		for _, v := range []string{`"yes"`, `"LIVE"`, `""`, `true`, `1`, `["live"]`, `{}`} {
			if r := s.call(t, "POST", path, `{"message":"hi","approvals":`+v+`}`, tok); r.status != 400 || r.body != refused {
				t.Errorf("POST %s with approvals %s: %d %s", path, v, r.status, r.body)
			}
		}
	}
	if len(started.turns) != 0 {
		t.Fatalf("refused requests started %d turns", len(started.turns))
	}
	// What begins the turn carries the choice (POST /chat shares it with
	// the streams, and hands its turn to the starter).
	for _, k := range []struct {
		body string
		live bool
	}{
		{`{"message":"hi"}`, false},
		{`{"message":"hi","approvals":null}`, false},
		{`{"message":"hi","approvals":"live"}`, true},
		{`{"message":"hi","approvals":"\u006cive"}`, true},
	} {
		started.turns = nil
		if r := s.call(t, "POST", "/chat", k.body, tok); r.status != 500 {
			t.Fatalf("%s: %d %s", k.body, r.status, r.body)
		}
		if len(started.turns) != 1 || started.turns[0].LiveApprovals != k.live {
			t.Fatalf("%s: started %+v", k.body, started.turns)
		}
	}
}

// GET /chat/{id} lists the requests the running turn waits on, [] when
// there are none or no turn runs; never those of another turn, answered
// or closed ones, nor any of another user's conversation.
func TestPendingApprovalsInConversationDetail(t *testing.T) {
	s := newStack(t)
	tok, uid := s.signIn(t, uniqueSub("pending"), "")
	intruder, _ := s.signIn(t, uniqueSub("pending-intruder"), "")
	c := newConversation(t, uid)
	detail := func() (pending []any, body string) {
		t.Helper()
		r := s.call(t, "GET", "/chat/"+c.ID, "", tok)
		appDetail(t, r)
		list, ok := r.json(t)["pendingApprovals"].([]any)
		if !ok {
			t.Fatalf("pendingApprovals is not an array: %s", r.body)
		}
		return list, r.body
	}
	if list, body := detail(); len(list) != 0 || !strings.Contains(body, `"pendingApprovals":[]`) {
		t.Fatalf("before any request: %s", body)
	}
	// A request nobody closed while no turn runs waits on no one.
	stale := askApproval(t, c.ID, uid, rand.Text(), time.Hour)
	if list, body := detail(); len(list) != 0 {
		t.Fatalf("with no turn running: %s", body)
	}

	// A turn runs: its own unanswered, unclosed, unexpired requests show.
	st := approvalStore()
	turn := rand.Text()
	if _, err := st.StartTurn(t.Context(), ovrlrd.TurnStart{
		UserID: uid, ConversationID: c.ID, Holder: turn, Lease: time.Minute,
		Message: ovrlrd.NewMessage{Role: ovrlrd.RoleUser, Content: "run the tests"},
	}); err != nil {
		t.Fatal(err)
	}
	waiting := askApproval(t, c.ID, uid, turn, time.Hour)
	answered := askApproval(t, c.ID, uid, turn, time.Hour)
	if _, _, err := st.DecideApproval(t.Context(), uid, c.ID, answered.ID, ovrlrd.DecisionAllow, ""); err != nil {
		t.Fatal(err)
	}
	closed := askApproval(t, c.ID, uid, turn, time.Hour)
	if _, err := st.CloseApproval(t.Context(), c.ID, closed.ID); err != nil {
		t.Fatal(err)
	}
	askApproval(t, c.ID, uid, turn, -time.Second)
	list, body := detail()
	if len(list) != 1 {
		t.Fatalf("while the turn waits: %s", body)
	}
	got, _ := list[0].(map[string]any)
	if len(got) != 5 || got["requestId"] != waiting.ID || got["conversationId"] != c.ID || got["toolName"] != "Bash" {
		t.Fatalf("the pending request: %s", body)
	}
	if in, _ := json.Marshal(got["toolInput"]); string(in) != `{"command":"npm test","timeout":5}` {
		t.Fatalf("its toolInput: %s", body)
	}
	if exp := requireDate(t, got, "expiresAt"); !exp.Equal(time.Time(waiting.ExpiresAt).Truncate(time.Millisecond)) {
		t.Fatalf("its expiresAt %v, want %v", exp, time.Time(waiting.ExpiresAt))
	}
	if strings.Contains(body, stale.ID) {
		t.Fatalf("another turn's request shows: %s", body)
	}
	// Another user learns nothing of it.
	if r := s.call(t, "GET", "/chat/"+c.ID, "", intruder); r.status != 404 || strings.Contains(r.body, waiting.ID) {
		t.Fatalf("another user: %d %s", r.status, r.body)
	}

	// Answered through the route, it is gone.
	if r := s.call(t, "POST", "/chat/"+c.ID+"/approvals/"+waiting.ID, `{"decision":"deny"}`, tok); r.status != 200 {
		t.Fatalf("answer: %d %s", r.status, r.body)
	}
	if list, body := detail(); len(list) != 0 {
		t.Fatalf("after the answer: %s", body)
	}
	// Once the turn is over, nothing waits: not even what it left open.
	left := askApproval(t, c.ID, uid, turn, time.Hour)
	if list, _ := detail(); len(list) != 1 {
		t.Fatalf("a second request of the running turn is not shown")
	}
	if err := st.ReleaseRun(t.Context(), c.ID, turn); err != nil {
		t.Fatal(err)
	}
	if list, body := detail(); len(list) != 0 || strings.Contains(body, left.ID) {
		t.Fatalf("after the turn: %s", body)
	}
}
