//go:build !windows

package main

// The command against the whole API as make dev builds it: gateway.NewLocal
// over DynamoDB Local, with stand-ins for Apple and S3. Not on Windows,
// where the server does not build; the command's other tests run there.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ovrlrd/cloud/internal/audit"
	"github.com/ovrlrd/cloud/internal/auth"
	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/devkit/anthropicfake"
	"github.com/ovrlrd/cloud/internal/devkit/applefake"
	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/devkit/devenv"
	"github.com/ovrlrd/cloud/internal/devkit/gateway"
	"github.com/ovrlrd/cloud/internal/devkit/stacktest"
	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/transcript"
)

// The end-to-end tests need DynamoDB Local (storetest starts one when the
// run has none).
func TestMain(m *testing.M) { storetest.Main(m) }

const testAPIKey = "k+/=test-api-key-0123456789"

// api is the served stack. It counts the requests that reach it, and
// keeps the uploads' PUTs the S3 stand-in received.
type api struct {
	*httptest.Server
	stack    *gateway.Stack
	apple    *applefake.Server
	requests atomic.Int64
	mu       sync.Mutex
	puts     []*http.Request
}

// newAPI serves the stack with make dev's wiring; overrides are name,
// value pairs of its environment.
func newAPI(t *testing.T, overrides ...string) *api {
	t.Helper()
	a := &api{apple: applefake.New()}
	t.Cleanup(a.apple.Close)
	fake := gofakes3.New(s3mem.New()).Server()
	s3 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/uploads/") {
			a.mu.Lock()
			a.puts = append(a.puts, r.Clone(context.Background()))
			a.mu.Unlock()
		}
		fake.ServeHTTP(w, r)
	}))
	t.Cleanup(s3.Close)
	env := stacktest.Env(t, s3.URL, a.apple.URL, testAPIKey, overrides...)
	var logs devenv.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the API's log:\n%s", logs.String())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stack, err := gateway.NewLocal(ctx, config.All, func(k string) string { return env[k] }, &logs, gateway.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stack.Close)
	a.stack = stack
	handler := stack.Handler()
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.requests.Add(1)
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(a.Close)
	return a
}

// signIn signs a user in through the real sign-in path, as make dev's demo
// does, and returns the session token.
func (a *api) signIn(t *testing.T) string {
	t.Helper()
	idt := a.apple.Mint(applefake.Claims{Subject: "000000.desk." + rand.Text()[:10], Email: "desk@example.com", EmailVerified: true})
	g, err := a.stack.Accounts.SignIn(context.Background(), auth.SignInRequest{IdentityToken: idt}, audit.Client{IP: "127.0.0.1", UserAgent: "ovrlrd test"})
	if err != nil {
		t.Fatal(err)
	}
	return g.SessionToken
}

// conversation is GET /chat/{id} as the app reads it.
func (a *api) conversation(t *testing.T, id, token string) (conv map[string]any, messages []map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, a.URL+"/chat/"+id+"?limit=100", nil)
	req.Header.Set("X-API-Key", testAPIKey)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var detail struct {
		Conversation map[string]any   `json:"conversation"`
		Messages     []map[string]any `json:"messages"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &detail) != nil {
		t.Fatalf("GET /chat/%s: %d %s", id, resp.StatusCode, body)
	}
	return detail.Conversation, detail.Messages
}

func (a *api) uploads() []*http.Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.puts
}

var importedLine = regexp.MustCompile(`^Imported session (\S+) as conversation (\S+): (\d+) messages`)

// importOK runs an import that must succeed, and returns the conversation
// id.
func importOK(t *testing.T, d *desk, args ...string) string {
	t.Helper()
	r := d.run(t, append([]string{"import"}, args...)...)
	m := importedLine.FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil {
		t.Fatalf("import %q: %+v", args, r)
	}
	return m[2]
}

// A session from the real CLI is listed, imported (the app then shows its
// messages), refused the second time with the first conversation named,
// imported through a presigned upload, and never read through a link.
func TestEndToEnd(t *testing.T) {
	a := newAPI(t)
	token := a.signIn(t)
	model := anthropicfake.New(anthropicfake.Commands())
	t.Cleanup(model.Close)
	id, data := claudetest.DeskSession(t, model.URL, anthropicfake.CommandPrefix+"echo desk-marker")
	sess, err := transcript.Parse(bytes.NewReader(data), id, 0)
	if err != nil {
		t.Fatal(err)
	}

	d := newDesk(t)
	d.place(t, transcript.Slug(sess.Cwd), id, data)
	if r := d.run(t, "login", "--url", a.URL, "--api-key", testAPIKey, "--token", token); r.code != 0 {
		t.Fatalf("login: %+v", r)
	}

	// The list.
	r := d.run(t, "sessions")
	if r.code != 0 {
		t.Fatalf("sessions: %+v", r)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	fields := strings.Fields(lines[len(lines)-1])
	if len(lines) != 2 || len(fields) < 6 || fields[0] != id || fields[3] != itoa(len(sess.Messages)) || fields[4] != sess.Cwd ||
		!strings.HasSuffix(lines[1], "RUN: echo desk-marker") {
		t.Fatalf("sessions:\n%s", r.stdout)
	}

	// The import; the app shows the desk's messages.
	conv := importOK(t, d, id)
	c, msgs := a.conversation(t, conv, token)
	if c["claudeSessionId"] != id || len(msgs) != len(sess.Messages) || !strings.Contains(msgs[0]["content"].(string), "desk-marker") {
		t.Fatalf("conversation %v, messages %v", c, msgs)
	}
	// 24 hours left: no refresh.
	if got := d.savedConfig(t).Token; got != token {
		t.Error("the token was refreshed a day before it expires")
	}

	// Again: the first conversation is named.
	r = d.run(t, "import", id)
	if want := "ovrlrd: This session was already imported as conversation " + conv + ". (HTTP 409)\n"; r.code != 1 || r.stderr != want {
		t.Errorf("second import: %+v, want stderr %q", r, want)
	}

	// Through a presigned upload: the same session under another id.
	other := "3f2b8c1e-4d5a-4b6c-9e7f-0a1b2c3d4e5f"
	otherData := bytes.ReplaceAll(data, []byte(id), []byte(other))
	d.place(t, transcript.Slug(sess.Cwd), other, otherData)
	d.alwaysUpload = true
	conv2 := importOK(t, d, other, "--title", "From the desk, uploaded")
	d.alwaysUpload = false
	puts := a.uploads()
	if len(puts) != 1 || puts[0].ContentLength != int64(len(otherData)) ||
		puts[0].Header.Get("Authorization") != "" || puts[0].Header.Get("X-API-Key") != "" {
		t.Fatalf("the uploads' PUTs: %d, %+v", len(puts), puts)
	}
	if c, msgs := a.conversation(t, conv2, token); c["title"] != "From the desk, uploaded" || c["claudeSessionId"] != other || len(msgs) != len(sess.Messages) {
		t.Fatalf("the uploaded conversation %v, %d messages", c, len(msgs))
	}

	// A link to a transcript outside the projects folder: refused, and
	// nothing is sent.
	linked := "9b2d7e44-1c3f-4a5e-8d6b-7f0e1a2b3c4d"
	outside := filepath.Join(d.home, "outside.jsonl")
	if err := os.WriteFile(outside, bytes.ReplaceAll(data, []byte(id), []byte(linked)), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(d.claude, "projects", transcript.Slug(sess.Cwd), linked+".jsonl")
	linkOrSkip(t, outside, link)
	before := a.requests.Load()
	r = d.run(t, "import", linked)
	if want := "ovrlrd: " + link + " is a symbolic link, and ovrlrd reads nothing through a link\n"; r.code != 1 || r.stderr != want {
		t.Errorf("import through a link: %+v, want stderr %q", r, want)
	}
	if n := a.requests.Load() - before; n != 0 {
		t.Errorf("the refused import sent %d requests", n)
	}

	// --project names one of the user's projects; this server keeps none
	// (no KMS key), and says so.
	if err := os.Rename(outside, link); err != nil {
		t.Fatal(err)
	}
	r = d.run(t, "import", linked, "--project", "demo")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "ovrlrd: listing your projects: ") || !strings.HasSuffix(r.stderr, "(HTTP 404)\n") {
		t.Errorf("import --project: %+v", r)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// A token that expires within 300 s is refreshed before the call, and the
// new one kept in the config file: the old one no longer refreshes.
func TestRefreshAgainstTheServer(t *testing.T) {
	a := newAPI(t, "SESSION_TTL", "2m")
	token := a.signIn(t)
	d := newDesk(t)
	if r := d.run(t, "login", "--url", a.URL, "--api-key", testAPIKey, "--token", token); r.code != 0 {
		t.Fatalf("login: %+v", r)
	}
	if exp := d.savedConfig(t).ExpiresAt; exp.Before(time.Now()) || exp.After(time.Now().Add(2*time.Minute+time.Second)) {
		t.Fatalf("login read the expiry %v from the token", exp)
	}
	d.place(t, "-srv-project", sessionA, synthetic(sessionA, "/srv/project", "Refresh first", "Done."))

	before := time.Now()
	conv := importOK(t, d, sessionA)
	after := time.Now()
	cfg := d.savedConfig(t)
	if cfg.Token == token || cfg.ExpiresAt.Before(before.Add(2*time.Minute-time.Second)) || cfg.ExpiresAt.After(after.Add(2*time.Minute)) {
		t.Fatalf("after the refresh the file holds the same token (%v) or the expiry %v", cfg.Token == token, cfg.ExpiresAt)
	}
	if _, msgs := a.conversation(t, conv, cfg.Token); len(msgs) != 2 {
		t.Errorf("%d messages", len(msgs))
	}
	// With --token the refreshed token is not kept: the file's stays.
	d.place(t, "-srv-project", sessionB, synthetic(sessionB, "/srv/project", "Refresh again", "Done."))
	other := a.signIn(t)
	importOK(t, d, sessionB, "--token", other)
	if d.savedConfig(t).Token != cfg.Token {
		t.Error("a refresh of --token replaced the file's token")
	}
}
