package push_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/ovrlrd/cloud/internal/devkit/apnsfake"
	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/push"
	"github.com/ovrlrd/cloud/internal/store"
)

func TestMain(m *testing.M) {
	file, err := apnsfake.CAFile()
	if err != nil {
		panic(err)
	}
	// Trusted the way the platform trusts roots; nothing in the client is
	// switched off for the test.
	os.Setenv("SSL_CERT_FILE", file)
	storetest.Main(m)
}

// logs collects log output for assertions.
type logs struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logs) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logs) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

type rig struct {
	apns  *apnsfake.Server
	store *store.Store
	n     *push.Notifier
	key   *ecdsa.PrivateKey
	user  string
	log   *logs
}

func newRig(t *testing.T) *rig {
	t.Helper()
	t.Cleanup(push.Shorten(50 * time.Millisecond))
	srv, err := apnsfake.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	st := storetest.New(t)
	l := &logs{}
	n, err := push.New(st, push.Config{
		KeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		KeyID:  "KEYID12345", TeamID: "TEAM123456", Topic: "com.ovrlrd.app", Host: srv.URL,
	}, slog.New(slog.NewJSONHandler(l, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return &rig{apns: srv, store: st, n: n, key: key, user: uuid.NewString(), log: l}
}

func (r *rig) device(t *testing.T, env ovrlrd.Environment) string {
	t.Helper()
	return r.deviceOf(t, r.user, env)
}

func (r *rig) deviceOf(t *testing.T, user string, env ovrlrd.Environment) string {
	t.Helper()
	tok := strings.ReplaceAll(uuid.NewString()+uuid.NewString(), "-", "")
	if err := r.store.PutDevice(context.Background(), ovrlrd.Device{UserID: user, Token: tok, Environment: env}); err != nil {
		t.Fatal(err)
	}
	return tok
}

func (r *rig) devices(t *testing.T) int {
	t.Helper()
	d, err := r.store.Devices(context.Background(), r.user)
	if err != nil {
		t.Fatal(err)
	}
	return len(d)
}

func TestPayloadAndHeaders(t *testing.T) {
	r := newRig(t)
	tok := r.device(t, ovrlrd.EnvSandbox)
	r.n.Notify(context.Background(), r.user, push.Message{ConversationID: "6f1c", Segments: []string{"Done.", " I updated README.md "}})
	reqs := r.apns.Requests()
	if len(reqs) != 1 || reqs[0].Token != tok {
		t.Fatalf("requests %+v", reqs)
	}
	want := map[string]any{
		"aps": map[string]any{
			"alert":     map[string]any{"title": "New response from Claude", "body": "Done.\n I updated README.md"},
			"sound":     "default",
			"thread-id": "6f1c",
		},
		"conversationId": "6f1c",
		"type":           "message_ready",
	}
	if !reflect.DeepEqual(reqs[0].Payload, want) {
		t.Fatalf("payload %s", reqs[0].Raw)
	}
	h := reqs[0].Header
	if h.Get("apns-topic") != "com.ovrlrd.app" || h.Get("apns-push-type") != "alert" || h.Get("apns-priority") != "10" {
		t.Fatalf("headers %v", h)
	}
	// The bearer is an ES256 JWT signed with our key: kid and iss as APNs wants.
	bearer, ok := strings.CutPrefix(h.Get("authorization"), "bearer ")
	if !ok {
		t.Fatalf("authorization %q", h.Get("authorization"))
	}
	parsed, err := jwt.Parse(bearer, func(*jwt.Token) (any, error) { return &r.key.PublicKey, nil }, jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer("TEAM123456"))
	if err != nil || parsed.Header["kid"] != "KEYID12345" {
		t.Fatalf("bearer: %v %v", err, parsed.Header)
	}
}

func TestPreviewIsCut(t *testing.T) {
	long := strings.Repeat("é", 200)
	p := string(push.Payload(push.Message{ConversationID: "c", Segments: []string{long}}))
	if !strings.Contains(p, strings.Repeat("é", 149)+"…") || strings.Contains(p, strings.Repeat("é", 150)) {
		t.Fatalf("payload %s", p)
	}
	if p := string(push.Payload(push.Message{ConversationID: "c", Title: "A title"})); !strings.Contains(p, `"body":"A title"`) {
		t.Fatalf("title fallback: %s", p)
	}
	if p := string(push.Payload(push.Message{ConversationID: "c"})); !strings.Contains(p, `"body":"Your response is ready"`) {
		t.Fatalf("last fallback: %s", p)
	}
}

func TestEveryDeviceOfTheUser(t *testing.T) {
	r := newRig(t)
	a, b := r.device(t, ovrlrd.EnvSandbox), r.device(t, ovrlrd.EnvProduction)
	r.n.Notify(context.Background(), r.user, push.Message{ConversationID: "c", Segments: []string{"hi"}})
	got := map[string]bool{}
	for _, q := range r.apns.Requests() {
		got[q.Token] = true
	}
	if len(got) != 2 || !got[a] || !got[b] {
		t.Fatalf("pushed to %v", got)
	}
}

func TestGoneOrBadTokensAreRemoved(t *testing.T) {
	r := newRig(t)
	gone, bad, good := r.device(t, ovrlrd.EnvSandbox), r.device(t, ovrlrd.EnvSandbox), r.device(t, ovrlrd.EnvSandbox)
	r.apns.Answer(gone, apnsfake.Answer{Status: 410, Reason: "Unregistered"})
	r.apns.Answer(bad, apnsfake.Answer{Status: 400, Reason: "BadDeviceToken"})
	r.n.Notify(context.Background(), r.user, push.Message{ConversationID: "c", Segments: []string{"hi"}})
	devs, _ := r.store.Devices(context.Background(), r.user)
	if len(devs) != 1 || devs[0].Token != good {
		t.Fatalf("devices left %+v", devs)
	}
	if n := len(r.apns.Requests()); n != 3 {
		t.Fatalf("%d requests; a 410 or a bad token is not retried", n)
	}
}

func TestRetriesThenSucceeds(t *testing.T) {
	r := newRig(t)
	tok := r.device(t, ovrlrd.EnvSandbox)
	r.apns.Answer(tok, apnsfake.Answer{Status: 429, Reason: "TooManyRequests"})
	r.n.Notify(context.Background(), r.user, push.Message{ConversationID: "c", Segments: []string{"hi"}})
	if n := len(r.apns.Requests()); n != 2 || r.devices(t) != 1 {
		t.Fatalf("%d requests", n)
	}
	if strings.Contains(r.log.String(), "gave up") {
		t.Fatalf("log %s", r.log.String())
	}
}

// Three 500s: three attempts, then it gives up and says so in the log.
// Its fourth answer is never asked for.
func TestGivesUpAfterThreeFailures(t *testing.T) {
	r := newRig(t)
	tok := r.device(t, ovrlrd.EnvSandbox)
	r.apns.Answer(tok, apnsfake.Answer{Status: 500, Reason: "InternalServerError"}, apnsfake.Answer{Status: 500}, apnsfake.Answer{Status: 500}, apnsfake.Answer{Status: 500})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r.n.Notify(ctx, r.user, push.Message{ConversationID: "c", Segments: []string{"hi"}})
	if n := len(r.apns.Requests()); n != 3 {
		t.Fatalf("%d attempts", n)
	}
	if !strings.Contains(r.log.String(), "push: gave up") || r.devices(t) != 1 {
		t.Fatalf("log %s", r.log.String())
	}
}

// APNs that never answers: the caller's deadline ends the attempts. The
// request's own timeout is an hour here, so only the deadline can end
// Notify.
func TestTimeoutIsBoundedByTheDeadline(t *testing.T) {
	t.Cleanup(push.ShortenSend(time.Hour))
	r := newRig(t)
	tok := r.device(t, ovrlrd.EnvSandbox)
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	r.apns.Answer(tok, apnsfake.Answer{Hold: hold}, apnsfake.Answer{Hold: hold}, apnsfake.Answer{Hold: hold})
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	notified := make(chan struct{})
	go func() {
		defer close(notified)
		r.n.Notify(ctx, r.user, push.Message{ConversationID: "c", Segments: []string{"hi"}})
	}()
	select {
	case <-notified:
	case <-time.After(time.Minute):
		t.Fatal("Notify outlived its deadline by a minute")
	}
}
