package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ovrlrd/cloud/internal/api"
	"github.com/ovrlrd/cloud/internal/devkit/anthropicfake"
	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/devkit/gateway"
	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// missingFunction stands in for the Lambda API when the stream function
// cannot be invoked: every invoke is refused.
func missingFunction(t *testing.T) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-ErrorType", "ResourceNotFoundException")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"Type":"User","Message":"Function not found"}`))
	}))
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ENDPOINT_URL_LAMBDA", srv.URL)
}

// A buffered turn whose start fails answers 503 and leaves nothing behind:
// no new conversation, no unanswered question, no lease holding the
// conversation.
func TestFailedStartIsUndone(t *testing.T) {
	missingFunction(t)
	s := newStack(t, "STREAM_FUNCTION_NAME", "ovrlrd-stream")
	tok, uid := s.signIn(t, uniqueSub("unstarted"), "")

	if r := s.call(t, "POST", "/chat", `{"message":"never answered"}`, tok); r.status != 503 {
		t.Fatalf("new conversation: %d %s", r.status, r.body)
	}
	if convs, _ := appList(t, s.call(t, "GET", "/chat", "", tok)); len(convs) != 0 {
		t.Fatalf("the failed start left a conversation: %v", convs)
	}

	c := newConversation(t, uid)
	if r := s.call(t, "POST", "/chat/"+c.ID, `{"message":"never answered"}`, tok); r.status != 503 {
		t.Fatalf("existing conversation: %d %s", r.status, r.body)
	}
	if _, msgs, _ := appDetail(t, s.call(t, "GET", "/chat/"+c.ID, "", tok)); len(msgs) != 1 || msgs[0]["content"] != "hello" {
		t.Fatalf("the failed start left its message: %v", msgs)
	}
	// The conversation takes the next turn at once (the stream function
	// runs it in this process).
	r, evs := s.stream(t, "/chat/"+c.ID+"/stream", `{"message":"next"}`, tok)
	if r.status != 200 || len(evs) == 0 || evs[len(evs)-1].Type != "complete" {
		t.Fatalf("next turn: %d %s %+v", r.status, r.body, evs)
	}
}

// The wait for a buffered turn ends before the function's own deadline: a
// turn still running is a 202, never a function killed mid-answer.
func TestBufferedWaitEndsBeforeTheDeadline(t *testing.T) {
	s := newStack(t) // the default 27 s wait
	tok, _ := s.signIn(t, uniqueSub("deadline"), "")
	// A turn that only ends when cancelled.
	slow := claudetest.Script("silent")
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RawPath: "/chat",
		Headers: map[string]string{"x-api-key": apiKey, "authorization": "Bearer " + tok, "content-type": "application/json"},
		Body:    `{"message":` + jsonString(slow) + `}`,
		RequestContext: events.APIGatewayV2HTTPRequestContext{DomainName: "api.example.com",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/chat", SourceIP: "192.0.2.1"}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := s.app.Chat.HTTP()(ctx, ev)
	late := ctx.Err()
	var body map[string]any
	_ = json.Unmarshal([]byte(resp.Body), &body)
	if conv, _ := body["conversationId"].(string); conv != "" {
		// The turn goes on in the background; stop it so the stack closes.
		t.Cleanup(func() { s.call(t, "POST", "/chat/"+conv+"/cancel", "", tok) })
	}
	if late != nil {
		t.Fatalf("answered after the function's deadline: %d %s %v", resp.StatusCode, resp.Body, err)
	}
	if err != nil || resp.StatusCode != 202 || body["conversationId"] == nil {
		t.Fatalf("got %d %s %v, want 202 with the conversation", resp.StatusCode, resp.Body, err)
	}
}

// A buffered turn's event runs the CLI once, however often it is delivered,
// late too, and not at all once another turn took its conversation.
func TestTurnEventRunsOnce(t *testing.T) {
	r := newEventRig(t, "redelivered", gateway.Options{})
	s, model, uid, ctx, h, event := r.s, r.model, r.uid, r.ctx, r.deliver, r.event

	c := newConversation(t, uid)
	raw := event(c.ID)
	if _, err := h(ctx, raw); err != nil {
		t.Fatal(err)
	}
	runs := turnCalls(model)
	if runs == 0 {
		t.Fatal("the first delivery did not run the CLI")
	}
	perRun := runs
	if _, err := h(ctx, raw); err != nil {
		t.Fatalf("the second delivery failed, and Lambda would retry it: %v", err)
	}
	if n := turnCalls(model); n != runs {
		t.Fatalf("the second delivery ran the CLI again: %d model calls, %d after the first", n, runs)
	}
	oneAnswer(t, ctx, s, c.ID)

	// Two deliveries at once: one claims the turn, the other finds it
	// running and does nothing.
	both := newConversation(t, uid)
	raw = event(both.ID)
	runs = turnCalls(model)
	errs := make(chan error, 2)
	for range 2 {
		go func() { _, err := h(ctx, raw); errs <- err }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("a concurrent delivery failed: %v", err)
		}
	}
	if n := turnCalls(model) - runs; n != perRun {
		t.Fatalf("two concurrent deliveries made %d model calls, want the %d of a single run", n, perRun)
	}
	oneAnswer(t, ctx, s, both.ID)
	runs = turnCalls(model)

	// Its event came after the lease expired, and nobody else took the
	// conversation: its user still gets the answer.
	late := newConversation(t, uid)
	raw = event(late.ID)
	expire(t, ctx, late.ID)
	if _, err := h(ctx, raw); err != nil {
		t.Fatalf("the late delivery failed: %v", err)
	}
	if n := turnCalls(model); n == runs {
		t.Fatal("a late delivery whose conversation was free did not run")
	}
	runs = turnCalls(model)

	// Another turn took the conversation before the event came: it does not
	// run, and the conversation says the message was not answered.
	taken := newConversation(t, uid)
	raw = event(taken.ID)
	expire(t, ctx, taken.ID)
	if err := storetest.HoldRun(ctx, taken.ID, "another turn", time.Now(), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := h(ctx, raw); err != nil {
		t.Fatalf("the stale delivery failed: %v", err)
	}
	if n := turnCalls(model); n != runs {
		t.Fatalf("a delivery whose conversation another turn took ran the CLI: %d model calls, %d before", n, runs)
	}
	msgs, _, err := s.app.Store.Messages(ctx, taken.ID, ovrlrd.Page{Limit: 10})
	if err != nil || len(msgs) == 0 || msgs[len(msgs)-1].Role != ovrlrd.RoleSystem || !strings.Contains(msgs[len(msgs)-1].Content, "not answered") {
		t.Fatalf("the unanswered message is not told: %+v %v", msgs, err)
	}
}

// Lambda never retries a turn's event, so its claim is retried here: a
// table that fails once still runs the turn; one that keeps failing leaves
// the conversation saying so, and the error counts in the function's alarm.
func TestTurnEventClaimRetried(t *testing.T) {
	fault := &storetest.Fault{Op: "UpdateItem"}
	r := newEventRig(t, "claimretry", gateway.Options{DynamoDB: faulting(fault)})
	s, model, uid, ctx, h, event := r.s, r.model, r.uid, r.ctx, r.deliver, r.event

	once := newConversation(t, uid)
	raw := event(once.ID)
	fault.Armed.Store(true)
	if _, err := h(ctx, raw); err != nil || fault.Fired.Load() != 1 {
		t.Fatalf("a claim failing once: %v, %d faults", err, fault.Fired.Load())
	}
	oneAnswer(t, ctx, s, once.ID)

	always := newConversation(t, uid)
	raw = event(always.ID)
	calls := turnCalls(model)
	fault.Times.Store(100)
	_, err := h(ctx, raw)
	fault.Times.Store(0)
	if err == nil || turnCalls(model) != calls {
		t.Fatalf("a claim that keeps failing: err %v, %d model calls after %d", err, turnCalls(model), calls)
	}
	msgs, _, err := s.app.Store.Messages(ctx, always.ID, ovrlrd.Page{Limit: 10})
	if err != nil || len(msgs) == 0 || msgs[len(msgs)-1].Role != ovrlrd.RoleSystem || !strings.Contains(msgs[len(msgs)-1].Content, "could not start") {
		t.Fatalf("the unstarted turn is not told: %+v %v", msgs, err)
	}
}

// eventRig delivers buffered turns' events to the stream function's
// handler, as Lambda does, for a user of a stack whose real CLI's model
// says "the only answer".
type eventRig struct {
	t       *testing.T
	s       *stack
	model   *anthropicfake.Server
	uid     string
	ctx     context.Context
	deliver func(context.Context, json.RawMessage) (any, error)
}

func newEventRig(t *testing.T, sub string, opts gateway.Options) *eventRig {
	t.Helper()
	model := anthropicfake.New(anthropicfake.Say("the only answer"))
	t.Cleanup(model.Close)
	s := newStackWith(t, opts,
		"CLAUDE_PATH", claudetest.RealCLI(t),
		"ANTHROPIC_BASE_URL", model.URL,
		"ANTHROPIC_API_KEY", "sk-ant-test-key",
	)
	_, uid := s.signIn(t, uniqueSub(sub), "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return &eventRig{t: t, s: s, model: model, uid: uid, ctx: ctx, deliver: s.app.Stream.Lambda()}
}

// event begins a buffered turn of "hello" in the user's conversation and
// returns the event the chat function would send for it.
func (r *eventRig) event(convID string) json.RawMessage {
	r.t.Helper()
	j, err := api.BeginTurn(r.ctx, r.s.app.Store, ovrlrd.TurnRequest{UserID: r.uid, ConversationID: convID, Message: "hello"}, api.TurnRules{})
	if err != nil {
		r.t.Fatal(err)
	}
	j.Buffered = true
	if j, err = j.Resolve(r.ctx); err != nil { // as the chat function does
		r.t.Fatal(err)
	}
	raw, err := json.Marshal(map[string]any{"ovrlrdTurn": j})
	if err != nil {
		r.t.Fatal(err)
	}
	return raw
}

// oneAnswer checks that a conversation (opened by newConversation) holds
// exactly one turn's messages after its first: the turn's message and one
// answer.
func oneAnswer(t *testing.T, ctx context.Context, s *stack, convID string) {
	t.Helper()
	msgs, _, err := s.app.Store.Messages(ctx, convID, ovrlrd.Page{Limit: 10})
	if err != nil || len(msgs) != 3 || msgs[1].Role != ovrlrd.RoleUser || msgs[2].Role != ovrlrd.RoleAssistant || msgs[2].Content != "the only answer" {
		t.Fatalf("want the turn's message and one answer, got %+v %v", msgs, err)
	}
}

// expire moves the conversation's lease into the past, as if its event
// waited longer than a lease.
func expire(t *testing.T, ctx context.Context, convID string) {
	t.Helper()
	err := storetest.DB().Table(storetest.TableName()).Update("PK", "CONV#"+convID).Range("SK", "RUN").
		Set("expiresAt", time.Now().Add(-time.Second).UnixMilli()).Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
}

// turnCalls counts the model requests of turns, leaving out their titles':
// a title run may be stopped before it asks the model, so its requests
// vary from run to run.
func turnCalls(model *anthropicfake.Server) int {
	n := 0
	for _, r := range model.Requests() {
		if !strings.Contains(r.Prompt(), "Reply with only the title.") {
			n++
		}
	}
	return n
}
