package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ovrlrd/cloud/internal/app/chatfn"
	"github.com/ovrlrd/cloud/internal/devkit/gateway"
	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/store"
)

// savedConversation runs a turn, so the conversation has messages in the
// table and its folder archived in S3.
func (s *stack) savedConversation(t *testing.T, tok, uid string) string {
	t.Helper()
	_, evs := s.stream(t, "/chat/stream", `{"message":"hi"}`, tok)
	conv := evs[len(evs)-1].ConversationID
	if conv == "" || partitionSize(t, "CONV#"+conv) == 0 || len(s.archives(t, uid, conv)) == 0 {
		t.Fatalf("the turn saved nothing: %+v", evs)
	}
	return conv
}

// archives lists what S3 keeps of conversation conv.
func (s *stack) archives(t *testing.T, uid, conv string) []string {
	t.Helper()
	var keys []string
	for _, k := range s.objects(t, "users/"+uid+"/") {
		if strings.Contains(k, conv) {
			keys = append(keys, k)
		}
	}
	return keys
}

// halfDelete deletes conv with its partition's purge failing: the
// conversation is gone, its messages and archive are not.
func (s *stack) halfDelete(t *testing.T, fault *storetest.Fault, tok, uid, conv string) {
	t.Helper()
	fault.Armed.Store(true)
	if r := s.call(t, "DELETE", "/chat/"+conv, "", tok); r.status != 503 || fault.Fired.Load() != 1 {
		t.Fatalf("delete with its purge failing: %d %s (faults %d)", r.status, r.body, fault.Fired.Load())
	}
	if r := s.call(t, "GET", "/chat/"+conv, "", tok); r.status != 404 {
		t.Fatalf("read after the half delete: %d %s", r.status, r.body)
	}
	if partitionSize(t, "CONV#"+conv) == 0 || len(s.archives(t, uid, conv)) == 0 {
		t.Fatal("the delete was not interrupted")
	}
}

// A conversation delete that failed part way is finished by the app's
// retry: it answers 200, and the messages and the S3 archive are gone.
func TestRetriedConversationDeleteFinishes(t *testing.T) {
	fault := &storetest.Fault{Op: "BatchWriteItem"}
	s := newStackWith(t, gateway.Options{DynamoDB: faulting(fault)})
	tok, uid := s.signIn(t, uniqueSub("halfdel"), "")
	conv := s.savedConversation(t, tok, uid)
	s.halfDelete(t, fault, tok, uid, conv)

	if r := s.call(t, "DELETE", "/chat/"+conv, "", tok); r.status != 200 || r.body != `{"success":true}` {
		t.Fatalf("the retry: %d %s", r.status, r.body)
	}
	if n := partitionSize(t, "CONV#"+conv); n != 0 {
		t.Fatalf("%d items outlived the retried delete", n)
	}
	if keys := s.archives(t, uid, conv); len(keys) != 0 {
		t.Fatalf("S3 keeps %v after the retried delete", keys)
	}
}

// Another user's DELETE of a half-deleted conversation is "not found", as
// every foreign id is, and purges nothing of it; the owner's finishes it.
func TestAnotherUsersHalfDeletedConversationIsNotFound(t *testing.T) {
	fault := &storetest.Fault{Op: "BatchWriteItem"}
	s := newStackWith(t, gateway.Options{DynamoDB: faulting(fault)})
	tok, uid := s.signIn(t, uniqueSub("halfowner"), "")
	intruder, _ := s.signIn(t, uniqueSub("halfintruder"), "")
	conv := s.savedConversation(t, tok, uid)
	s.halfDelete(t, fault, tok, uid, conv)
	items, archives := partitionSize(t, "CONV#"+conv), s.archives(t, uid, conv)

	r := s.call(t, "DELETE", "/chat/"+conv, "", intruder)
	if r.status != 404 || r.body != `{"error":"Conversation not found"}` {
		t.Fatalf("another user's delete: %d %s", r.status, r.body)
	}
	if n, keys := partitionSize(t, "CONV#"+conv), s.archives(t, uid, conv); n != items || len(keys) != len(archives) {
		t.Fatalf("another user's delete purged: %d items and %v left, were %d and %v", n, keys, items, archives)
	}
	// The owner's retry, though, finishes it.
	if r := s.call(t, "DELETE", "/chat/"+conv, "", tok); r.status != 200 {
		t.Fatalf("the owner's retry: %d %s", r.status, r.body)
	}
	if n, keys := partitionSize(t, "CONV#"+conv), s.archives(t, uid, conv); n != 0 || len(keys) != 0 {
		t.Fatalf("after the owner's retry: %d items and %v left", n, keys)
	}
}

// An account deletion answers once the account is closed; the rest is
// finished in the background, and a first attempt that fails is retried to
// the end, with no sign-in to finish it. Writes are refused from the
// moment the DELETE answered, on every instance.
func TestAccountDeletionFinishesInTheBackground(t *testing.T) {
	fault := &storetest.Fault{Op: "TransactWriteItems"}
	s := newStackWith(t, gateway.Options{DynamoDB: faulting(fault), FinishBackoff: time.Millisecond})
	other := s.twin(t)
	tok, uid := s.signIn(t, uniqueSub("bgdelete"), "")
	conv := s.savedConversation(t, tok, uid)
	if r := other.call(t, "GET", "/chat", "", tok); r.status != 200 {
		t.Fatalf("the other instance's first read: %d %s", r.status, r.body)
	}

	// The request itself writes no transaction: the first is the finish's.
	fault.Armed.Store(true)
	if r := s.call(t, "DELETE", "/auth/account", "", tok); r.status != 204 || r.body != "" {
		t.Fatalf("delete account: %d %s", r.status, r.body)
	}
	if r := other.call(t, "POST", "/chat/"+conv+"/events", `{"content":"late"}`, tok); r.status != 401 {
		t.Fatalf("a write after the DELETE answered: %d %s", r.status, r.body)
	}
	if r := s.call(t, "GET", "/chat", "", tok); r.status != 401 {
		t.Fatalf("the token after the DELETE answered: %d %s", r.status, r.body)
	}

	s.app.Close() // waits for the background finish, retries included
	if fault.Fired.Load() != 1 {
		t.Fatalf("the finish's first attempt did not fail (faults %d)", fault.Fired.Load())
	}
	if n := partitionSize(t, "USER#"+uid); n != 1 {
		t.Fatalf("%d items under the deleted user, want only its tombstone", n)
	}
	if n := partitionSize(t, "CONV#"+conv); n != 0 {
		t.Fatalf("%d items of its conversation left", n)
	}
	if keys := s.objects(t, "users/"+uid+"/"); len(keys) != 0 {
		t.Fatalf("S3 keeps %v of the deleted account", keys)
	}
}

// lambdaFake stands in for the Lambda service: it hands each Invoke to the
// test.
type lambdaFake struct {
	*httptest.Server
	invokes chan invoke
}

type invoke struct {
	function, invocationType string
	payload                  []byte
}

func newLambdaFake(t *testing.T) *lambdaFake {
	f := &lambdaFake{invokes: make(chan invoke, 4)}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, _ := strings.CutPrefix(r.URL.Path, "/2015-03-31/functions/")
		name, _ = strings.CutSuffix(name, "/invocations")
		body, _ := io.ReadAll(r.Body)
		f.invokes <- invoke{function: name, invocationType: r.Header.Get("X-Amz-Invocation-Type"), payload: body}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(f.Close)
	return f
}

// In Lambda the finish is an asynchronous invoke of the chat function
// itself, whose event runs it; a failed run fails the invocation, so that
// Lambda retries it. An HTTP request never passes for that event.
func TestAccountDeletionInLambdaInvokesItself(t *testing.T) {
	lam := newLambdaFake(t)
	t.Setenv("AWS_ENDPOINT_URL_LAMBDA", lam.URL)
	fault := &storetest.Fault{Op: "TransactWriteItems"}
	s := newStackWith(t, gateway.Options{DynamoDB: faulting(fault), Chat: chatfn.Options{SelfInvoke: "ovrlrd-test-chat"}})
	tok, uid := s.signIn(t, uniqueSub("selfinvoke"), "")
	conv := s.savedConversation(t, tok, uid)

	if r := s.call(t, "DELETE", "/auth/account", "", tok); r.status != 204 {
		t.Fatalf("delete account: %d %s", r.status, r.body)
	}
	// The invoke is made before the DELETE answers.
	var inv invoke
	select {
	case inv = <-lam.invokes:
	default:
		t.Fatal("the DELETE answered without invoking the function")
	}
	if inv.function != "ovrlrd-test-chat" || inv.invocationType != "Event" {
		t.Fatalf("invoked %s as %q, want the chat function, asynchronously", inv.function, inv.invocationType)
	}
	st := store.New(storetest.DB(), store.Options{Table: storetest.TableName()})
	unfinished := func(what string) {
		t.Helper()
		if _, err := st.User(context.Background(), uid); !errors.Is(err, store.ErrAccountDeleted) || partitionSize(t, "CONV#"+conv) == 0 {
			t.Fatalf("%s: %v; want the account closed and not yet finished", what, err)
		}
	}
	unfinished("after the DELETE")

	handler := s.app.Chat.Lambda()
	// An HTTP request is served as one, even carrying the event's field.
	raw, err := os.ReadFile("../../events/chat-account-delete.json")
	if err != nil {
		t.Fatal(err)
	}
	var hybrid map[string]any
	if err := json.Unmarshal(raw, &hybrid); err != nil {
		t.Fatal(err)
	}
	hybrid["ovrlrdFinishAccountDeletion"] = uid
	raw, _ = json.Marshal(hybrid)
	out, err := handler(context.Background(), raw)
	if resp, ok := out.(events.APIGatewayV2HTTPResponse); err != nil || !ok || resp.StatusCode != 401 {
		t.Fatalf("an HTTP request with the event's field: %#v, %v", out, err)
	}
	unfinished("after the HTTP request")
	if _, err := handler(context.Background(), json.RawMessage(`{"something":"else"}`)); err == nil {
		t.Fatal("an unknown event was accepted")
	}

	fault.Armed.Store(true)
	if _, err := handler(context.Background(), inv.payload); err == nil || fault.Fired.Load() != 1 {
		t.Fatalf("the first run, failing: %v (faults %d)", err, fault.Fired.Load())
	}
	// An invocation whose time runs out part way hands the rest to the
	// next one, rather than failing towards Lambda's two retries.
	short, cancel := context.WithTimeout(context.Background(), time.Second) // less than the hand-over margin
	defer cancel()
	if out, err := handler(short, inv.payload); err != nil {
		t.Fatalf("an invocation out of time: %#v %v", out, err)
	}
	select {
	case next := <-lam.invokes:
		if !strings.Contains(string(next.payload), `"link":1`) || !strings.Contains(string(next.payload), uid) {
			t.Fatalf("handed over %s", next.payload)
		}
	default:
		t.Fatal("an invocation out of time did not hand the deletion over")
	}

	if _, err := handler(context.Background(), inv.payload); err != nil {
		t.Fatalf("Lambda's retry: %v", err)
	}
	_, err = st.User(context.Background(), uid)
	if !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) || partitionSize(t, "CONV#"+conv) != 0 || len(s.objects(t, "users/"+uid+"/")) != 0 {
		t.Fatalf("after the retry: %v; want the account and its data gone", err)
	}
	// Lambda may deliver an event twice.
	if _, err := handler(context.Background(), inv.payload); err != nil {
		t.Fatalf("a repeated event: %v", err)
	}
}
