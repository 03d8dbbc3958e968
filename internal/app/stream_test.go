package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ovrlrd/cloud/internal/app/chatfn"
	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/devkit/gateway"
	"github.com/ovrlrd/cloud/internal/devkit/ssetest"
)

// stream posts a turn the way the app's SSE client does and decodes the
// body with the app's rules.
func (s *stack) stream(t *testing.T, path, body, tok string, extra ...string) (response, []ssetest.Event) {
	t.Helper()
	r := s.call(t, "POST", path, body, tok, append([]string{"Accept", "text/event-stream"}, extra...)...)
	if r.status != 200 {
		return r, nil
	}
	if strings.Contains(r.body, "\r") {
		t.Fatal("CR in the SSE stream")
	}
	evs, err := ssetest.Decode([]byte(r.body))
	if err != nil {
		t.Fatalf("the app could not decode the stream: %v\n%s", err, r.body)
	}
	return r, evs
}

func TestStreamedTurnOverHTTP(t *testing.T) {
	s := newStack(t)
	tok, _ := s.signIn(t, uniqueSub("stream"), "")
	r, evs := s.stream(t, "/chat/stream", `{"message":`+jsonString(claudetest.Script("normal", "text", "Hello ✓ world"))+`}`, tok)
	if ct := r.header.Get("Content-Type"); ct != "text/event-stream" || r.header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("headers %v", r.header)
	}
	if len(evs) < 3 || evs[0].Type != "ping" || evs[len(evs)-1].Type != "complete" {
		t.Fatalf("events %+v", evs)
	}
	conv := evs[len(evs)-1].ConversationID
	if conv == "" {
		t.Fatal("complete carries no conversationId: the app could not learn the new id")
	}
	// Saved before complete: the conversation already holds the answer.
	_, msgs, _ := appDetail(t, s.call(t, "GET", "/chat/"+conv, "", tok))
	if len(msgs) != 2 || msgs[1]["content"] != "Hello ✓ world" {
		t.Fatalf("messages %v", msgs)
	}
	// The next turn continues the same conversation.
	_, evs = s.stream(t, "/chat/"+conv+"/stream", `{"message":"again"}`, tok)
	if evs[len(evs)-1].Type != "complete" || evs[len(evs)-1].ConversationID != conv {
		t.Fatalf("second turn %+v", evs[len(evs)-1])
	}
}

func TestPreStreamErrorsAreJSON(t *testing.T) {
	s := newStack(t)
	tok, uid := s.signIn(t, uniqueSub("prestream"), "")
	c := newConversation(t, uid)
	cases := []struct {
		name, path, body string
		status           int
		want             string
	}{
		{"empty message", "/chat/stream", `{"message":""}`, 400, `{"error":"Field \"message\" is required."}`},
		{"missing message", "/chat/stream", `{}`, 400, `{"error":"Field \"message\" is required."}`},
		{"tool not allowed", "/chat/stream", `{"message":"x","allowedTools":["rm -rf"]}`, 400, `{"error":"Tool \"rm -rf\" is not allowed on this server."}`},
		{"foreign conversation", "/chat/6f1c0000-0000-4000-8000-000000000000/stream", `{"message":"x"}`, 404, `{"error":"Conversation not found"}`},
		{"malformed", "/chat/" + c.ID + "/stream", `{"message":`, 400, `{"error":"Request body is not valid JSON."}`},
	}
	for _, k := range cases {
		r, _ := s.stream(t, k.path, k.body, tok)
		if r.status != k.status || r.body != k.want {
			t.Errorf("%s: got %d %s, want %d %s", k.name, r.status, r.body, k.status, k.want)
		}
	}
	// The turn limit (3 an hour here) answers 429 as JSON too. Seven tries
	// meet it even if a window boundary falls between them.
	s = newStack(t, "RATE_LIMIT_TURN", "3/1h")
	tok, uid = s.signIn(t, uniqueSub("limited"), "")
	c = newConversation(t, uid)
	var last response
	for range 7 {
		if last, _ = s.stream(t, "/chat/"+c.ID+"/stream", `{"message":"hi"}`, tok); last.status == 429 {
			break
		}
	}
	if last.status != 429 || last.body != `{"error":"Too many requests. Please slow down."}` {
		t.Fatalf("turn limit: %d %s", last.status, last.body)
	}
}

// One turn per conversation: a second one while the first runs is a 409.
func TestConcurrentTurnIs409(t *testing.T) {
	s := newStack(t)
	tok, uid := s.signIn(t, uniqueSub("busy"), "")
	c := newConversation(t, uid)
	// A turn that runs until it is cancelled, begun once its first event
	// arrived (the ping that follows taking the lease).
	first := s.begun(t, c.ID, claudetest.Script("silent"), tok)
	r, _ := s.stream(t, "/chat/"+c.ID+"/stream", `{"message":"second"}`, tok)
	if r.status != 409 || r.body != `{"error":"A turn is already running for this conversation."}` {
		t.Fatalf("second turn: %d %s", r.status, r.body)
	}
	if r := s.call(t, "POST", "/chat/"+c.ID+"/cancel", "", tok); r.status != 200 {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	if last := first.rest(t); last.Type != "error" || last.Message != "Cancelled" {
		t.Fatalf("the first turn ended with %+v", last)
	}
}

func TestOriginSecretGuardsTheStreamFunction(t *testing.T) {
	s := newStack(t, "ORIGIN_SECRET", "from-cloudfront-0123456789")
	tok, _ := s.signIn(t, uniqueSub("origin"), "")
	r, _ := s.stream(t, "/chat/stream", `{"message":"hi"}`, tok)
	if r.status != 403 || r.body != `{"error":"Forbidden"}` {
		t.Fatalf("without the header: %d %s", r.status, r.body)
	}
	r, _ = s.stream(t, "/chat/stream", `{"message":"hi"}`, tok, "X-Origin-Secret", "wrong")
	if r.status != 403 {
		t.Fatalf("wrong header: %d", r.status)
	}
	_, evs := s.stream(t, "/chat/stream", `{"message":"hi"}`, tok, "X-Origin-Secret", "from-cloudfront-0123456789")
	if len(evs) == 0 || evs[len(evs)-1].Type != "complete" {
		t.Fatalf("with the header: %+v", evs)
	}
}

// While the origin secret rolls (README, "Rolling the origin secret"), an
// environment started after the parameters changed accepts what CloudFront
// sends before its update and after it, and nothing else.
func TestOriginSecretRolls(t *testing.T) {
	const old, current = "old-cloudfront-secret-0123456789", "new-cloudfront-secret-9876543210"
	s := newStack(t, "ORIGIN_SECRET", current, "ORIGIN_SECRET_PREVIOUS", old)
	tok, _ := s.signIn(t, uniqueSub("origin-roll"), "")
	for _, secret := range []string{old, current} {
		_, evs := s.stream(t, "/chat/stream", `{"message":"hi"}`, tok, "X-Origin-Secret", secret)
		if len(evs) == 0 || evs[len(evs)-1].Type != "complete" {
			t.Fatalf("with %s: %+v", secret, evs)
		}
	}
	for _, secret := range []string{"", "wrong", old + current} {
		if r, _ := s.stream(t, "/chat/stream", `{"message":"hi"}`, tok, "X-Origin-Secret", secret); r.status != 403 {
			t.Fatalf("with %q: %d %s", secret, r.status, r.body)
		}
	}
}

func TestBufferedTurns(t *testing.T) {
	s := newStackWith(t, gateway.Options{Chat: chatfn.Options{BufferedWait: 2 * time.Second}})
	tok, _ := s.signIn(t, uniqueSub("buffered"), "")
	r := s.call(t, "POST", "/chat", `{"message":`+jsonString(claudetest.Script("normal", "text", "buffered answer"))+`}`, tok)
	if r.status != 200 || r.json(t)["message"] != "buffered answer" || r.json(t)["conversationId"] == "" {
		t.Fatalf("buffered: %d %s", r.status, r.body)
	}
	conv := r.json(t)["conversationId"].(string)

	// A turn longer than the wait: 202 now, saved in the background.
	slow := claudetest.Script("lines", "delay_ms", 1500, "lines", []any{
		map[string]any{"type": "system", "subtype": "init", "session_id": "s-2"},
		map[string]any{"type": "assistant", "message": map[string]any{"content": []any{map[string]any{"type": "text", "text": "late answer"}}}},
		map[string]any{"type": "result", "subtype": "success", "is_error": false, "result": "late answer"},
	})
	r = s.call(t, "POST", "/chat/"+conv, `{"message":`+jsonString(slow)+`}`, tok)
	if r.status != 202 || r.body != `{"conversationId":"`+conv+`"}` {
		t.Fatalf("slow buffered: %d %s", r.status, r.body)
	}
	s.app.Close() // waits for the background turn
	_, msgs, _ := appDetail(t, s.call(t, "GET", "/chat/"+conv, "", tok))
	if last := msgs[len(msgs)-1]; last["content"] != "late answer" {
		t.Fatalf("background turn not saved: %v", msgs)
	}
	if r := s.call(t, "POST", "/chat", `{"message":"x","allowedTools":["Bash"]}`, tok); r.status != 400 {
		t.Fatalf("allowedTools on the buffered route: %d %s", r.status, r.body)
	}
}

func TestCancelRoute(t *testing.T) {
	s := newStack(t)
	tok, uid := s.signIn(t, uniqueSub("cancel"), "")
	c := newConversation(t, uid)
	if r := s.call(t, "POST", "/chat/"+c.ID+"/cancel", "", tok); r.status != 404 {
		t.Fatalf("nothing running: %d %s", r.status, r.body)
	}
	// Cancelled once its first event arrived. (How soon a cancel ends a
	// turn is measured by make bench: "cancel to terminal event".)
	running := s.begun(t, c.ID, claudetest.Script("silent"), tok)
	if r := s.call(t, "POST", "/chat/"+c.ID+"/cancel", "", tok); r.status != 200 || r.body != `{"success":true}` {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	if last := running.rest(t); last.Type != "error" || last.Message != "Cancelled" {
		t.Fatalf("terminal %+v", last)
	}
}

// openTurn is a streamed turn whose first event arrived.
type openTurn struct{ rd *eventReader }

// begun posts a turn in conversation conv and returns once its first SSE
// event arrived: the turn holds the conversation's lease and runs. A turn
// still running when the test ends is cancelled, so the stack can close.
func (s *stack) begun(t *testing.T, conv, message, tok string) *openTurn {
	t.Helper()
	resp := s.openStream(t, http.DefaultClient, "/chat/"+conv+"/stream", `{"message":`+jsonString(message)+`}`, tok)
	t.Cleanup(func() {
		s.call(t, "POST", "/chat/"+conv+"/cancel", "", tok)
		resp.Body.Close()
	})
	if resp.StatusCode != 200 {
		t.Fatalf("turn in %s: %d", conv, resp.StatusCode)
	}
	o := &openTurn{rd: newEventReader(resp.Body)}
	if ev, err := o.rd.next(); err != nil {
		t.Fatalf("turn in %s: no first event: %v", conv, err)
	} else if ev.Type != "ping" {
		t.Fatalf("turn in %s: first event %+v", conv, ev)
	}
	return o
}

// rest reads the turn's stream to its end and returns its one terminal
// event.
func (o *openTurn) rest(t *testing.T) ssetest.Event {
	t.Helper()
	var evs []ssetest.Event
	for {
		ev, err := o.rd.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	return checkOneTerminal(t, evs)
}

// The stream function's Lambda handler serves both the Function URL and the
// chat function's internal turn event.
func TestStreamLambdaDispatch(t *testing.T) {
	s := newStack(t)
	tok, _ := s.signIn(t, uniqueSub("dispatch"), "")
	h := s.app.Stream.Lambda()

	url := events.LambdaFunctionURLRequest{
		Version: "2.0", RawPath: "/chat/stream",
		Headers: map[string]string{"x-api-key": apiKey, "authorization": "Bearer " + tok, "content-type": "application/json"},
		Body:    `{"message":"via the function url"}`,
		RequestContext: events.LambdaFunctionURLRequestContext{
			HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{Method: "POST", Path: "/chat/stream", SourceIP: "192.0.2.1"},
		},
	}
	raw, _ := json.Marshal(url)
	out, err := h(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	resp, ok := out.(*events.LambdaFunctionURLStreamingResponse)
	if !ok || resp.StatusCode != 200 {
		t.Fatalf("function url answer %T %+v", out, out)
	}
	body, _ := io.ReadAll(resp.Body)
	evs, err := ssetest.Decode(body)
	if err != nil || evs[len(evs)-1].Type != "complete" {
		t.Fatalf("stream %v %s", err, body)
	}

	if _, err := h(context.Background(), json.RawMessage(`{"hello":"world"}`)); err == nil {
		t.Fatal("an unknown event was accepted")
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
