package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ovrlrd/cloud/internal/devkit/apnsfake"
	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/devkit/ssetest"
)

// pushStack is a stack whose pushes go to a loopback APNs, with overrides.
func pushStack(t *testing.T, overrides ...string) (*stack, *apnsfake.Server) {
	t.Helper()
	apns, err := apnsfake.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(apns.Close)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	s := newStack(t, append([]string{"APNS_KEY_ID", "KEYID12345", "APPLE_TEAM_ID", "TEAM123456",
		"APNS_KEY", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), "APNS_HOST", apns.URL}, overrides...)...)
	return s, apns
}

// waitPushes waits for n pushes to arrive.
func waitPushes(t *testing.T, apns *apnsfake.Server, n int) []apnsfake.Request {
	t.Helper()
	if err := apns.Wait(hangGuard(t), n); err != nil {
		t.Fatalf("%d pushes, want %d: %v", len(apns.Requests()), n, err)
	}
	return apns.Requests()
}

func TestCompleteTurnIsPushed(t *testing.T) {
	s, apns := pushStack(t)
	tok, _ := s.signIn(t, uniqueSub("push"), "") // registers a device
	_, evs := s.stream(t, "/chat/stream", `{"message":`+jsonString(claudetest.Script("normal", "text", "Your answer"))+`}`, tok)
	conv := evs[len(evs)-1].ConversationID
	got := waitPushes(t, apns, 1)
	if got[0].Token != strings.Repeat("0f", 32) || got[0].Payload["conversationId"] != conv || got[0].Payload["type"] != "message_ready" ||
		got[0].Header.Get("apns-push-type") != "alert" {
		t.Fatalf("push %+v", got[0])
	}
	// Only complete is pushed. A turn pushes before its stream ends, so a
	// push of the permission request would come before the next turn's.
	s.stream(t, "/chat/"+conv+"/stream", `{"message":`+jsonString(claudetest.Script("denied"))+`}`, tok)
	s.stream(t, "/chat/"+conv+"/stream", `{"message":`+jsonString(claudetest.Script("normal", "text", "After the permission request"))+`}`, tok)
	got = waitPushes(t, apns, 2)
	if body := alertBody(got[1]); len(got) != 2 || body != "After the permission request" {
		t.Fatalf("%d pushes, the second saying %q: the permission request was pushed", len(got), body)
	}
}

// alertBody is what a push shows under its title.
func alertBody(r apnsfake.Request) string {
	aps, _ := r.Payload["aps"].(map[string]any)
	alert, _ := aps["alert"].(map[string]any)
	body, _ := alert["body"].(string)
	return body
}

// The client leaves mid-turn: the answer is still saved and pushed.
func TestClientThatLeavesGetsThePush(t *testing.T) {
	s, apns := pushStack(t)
	tok, _ := s.signIn(t, uniqueSub("leaver"), "")
	body := `{"message":` + jsonString(claudetest.Script("lines", "delay_ms", 400, "lines", []any{
		map[string]any{"type": "system", "subtype": "init", "session_id": "s"},
		map[string]any{"type": "assistant", "message": map[string]any{"content": []any{map[string]any{"type": "text", "text": "first part"}}}},
		map[string]any{"type": "assistant", "message": map[string]any{"content": []any{map[string]any{"type": "text", "text": " and the rest"}}}},
		map[string]any{"type": "result", "subtype": "success", "is_error": false, "result": "done", "total_cost_usd": 0.001},
	})) + `}`
	req, _ := http.NewRequest("POST", s.URL+"/chat/stream", strings.NewReader(body))
	req.Header.Set("X-API-Key", apiKey)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	first, err := ssetest.NewReader(resp.Body).Next() // the first ping
	resp.Body.Close()                                 // the user leaves the chat screen
	if err != nil || !strings.Contains(string(first), "ping") {
		t.Fatalf("first event %q: %v", first, err)
	}
	got := waitPushes(t, apns, 1)
	conv, _ := got[0].Payload["conversationId"].(string)
	_, msgs, _ := appDetail(t, s.call(t, "GET", "/chat/"+conv, "", tok))
	if len(msgs) != 2 || msgs[1]["content"] != "first part and the rest" {
		t.Fatalf("messages %v", msgs)
	}
}

// APNs failing three times: the turn is unaffected.
func TestPushFailureDoesNotFailTheTurn(t *testing.T) {
	s, apns := pushStack(t)
	tok, _ := s.signIn(t, uniqueSub("apnsdown"), "")
	dev := strings.Repeat("0f", 32)
	apns.Answer(dev, apnsfake.Answer{Status: 500}, apnsfake.Answer{Status: 500}, apnsfake.Answer{Status: 500})
	_, evs := s.stream(t, "/chat/stream", `{"message":"hi"}`, tok)
	if evs[len(evs)-1].Type != "complete" {
		t.Fatalf("terminal %+v", evs[len(evs)-1])
	}
	waitPushes(t, apns, 3)
}

// objects lists what the S3 stand-in holds under prefix.
func (s *stack) objects(t *testing.T, prefix string) []string {
	t.Helper()
	c := s3.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("l", "l", "")},
		func(o *s3.Options) { o.BaseEndpoint = aws.String(s.s3); o.UsePathStyle = true })
	out, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(s.app.Config.SessionsBucket), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}

// Deleting a conversation, then the account, removes what S3 keeps of them.
func TestDeletionsRemoveSavedWorkspaces(t *testing.T) {
	s := newStack(t)
	tok, uid := s.signIn(t, uniqueSub("s3del"), "")
	var convs []string
	for range 2 {
		_, evs := s.stream(t, "/chat/stream", `{"message":"hi"}`, tok)
		convs = append(convs, evs[len(evs)-1].ConversationID)
	}
	if keys := s.objects(t, "users/"+uid+"/"); len(keys) < 2 {
		t.Fatalf("saved after the turns: %v", keys)
	}
	if r := s.call(t, "DELETE", "/chat/"+convs[0], "", tok); r.status != 200 {
		t.Fatalf("delete: %d", r.status)
	}
	for _, k := range s.objects(t, "users/"+uid+"/") {
		if strings.Contains(k, convs[0]) {
			t.Fatalf("%s outlived its conversation", k)
		}
	}
	if r := s.call(t, "DELETE", "/auth/account", "", tok); r.status != 204 {
		t.Fatalf("delete account: %d", r.status)
	}
	s.app.Close() // the deletion finishes in the background
	if keys := s.objects(t, "users/"+uid+"/"); len(keys) != 0 {
		t.Fatalf("left after the account: %v", keys)
	}
}
