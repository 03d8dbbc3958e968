package turn_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/google/uuid"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ovrlrd/cloud/internal/api"
	"github.com/ovrlrd/cloud/internal/claude"
	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/devkit/anthropicfake"
	"github.com/ovrlrd/cloud/internal/devkit/sandboxtest"
	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/modelproxy"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/sandbox"
	"github.com/ovrlrd/cloud/internal/sse"
	"github.com/ovrlrd/cloud/internal/store"
	"github.com/ovrlrd/cloud/internal/turn"
	"github.com/ovrlrd/cloud/internal/workspace"
)

func TestMain(m *testing.M) {
	if err := claude.BecomeSubreaper(); err != nil {
		panic(err)
	}
	storetest.Main(m)
}

// recorder is a Sink that keeps what the client would see.
type recorder struct {
	mu     sync.Mutex
	events []sse.Event
	pings  int
	failAt int // > 0: writes fail from this event on (the client left)
}

func (r *recorder) Send(e sse.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.Type == sse.Ping {
		r.pings++
		return nil
	}
	if r.failAt > 0 && len(r.events)+1 >= r.failAt {
		return errors.New("client gone")
	}
	r.events = append(r.events, e)
	return nil
}

func (r *recorder) types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, e.Type)
	}
	return out
}

func (r *recorder) last() sse.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) == 0 {
		return sse.Event{}
	}
	return r.events[len(r.events)-1]
}

// terminals counts the terminal events: every turn sends exactly one.
func (r *recorder) terminals() int {
	n := 0
	for _, t := range r.types() {
		if (sse.Event{Type: t}).Terminal() {
			n++
		}
	}
	return n
}

type rig struct {
	t     *testing.T
	store *store.Store
	svc   *turn.Service
	root  string
	user  string
	s3    *httptest.Server // the S3 stand-in the conversations' folders go to
	s3Off atomic.Bool      // set: the S3 stand-in answers 500 to everything
	s3RO  atomic.Bool      // set: the S3 stand-in answers 500 to writes
	ws    *workspace.Store
	logs  *syncLog // what the service logged
}

// newRig runs turns with the CLI at cli, the real one by default. Its model
// calls go through the model proxy to upstream ("" for none: the fake CLI
// makes none).
func newRig(t *testing.T, cli, upstream string, mutate ...func(*turn.Config)) *rig {
	t.Helper()
	r := &rig{t: t, store: storetest.New(t), root: sandboxtest.Dir(t), user: uuid.NewString(), logs: &syncLog{}}
	r.s3 = httptest.NewServer(switchable{on: gofakes3.New(s3mem.New()).Server(), off: &r.s3Off, ro: &r.s3RO})
	t.Cleanup(r.s3.Close)
	log := slog.New(slog.NewJSONHandler(r.logs, nil))
	r.ws = workspace.New(awsTestConfig(),
		workspace.Options{Bucket: "sessions", Endpoint: r.s3.URL, MaxBytes: 50 << 20}, log)
	if err := r.ws.EnsureBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, cli, upstream, r.root)
	cfg.Workspace, cfg.WorkspaceMaxBytes = r.ws, 50<<20
	for _, m := range mutate {
		m(&cfg)
	}
	r.svc = turn.New(r.store, cfg, log)
	return r
}

// switchable serves on, or answers 500 while off is set, or to writes while
// ro is set.
type switchable struct {
	on      http.Handler
	off, ro *atomic.Bool
}

func (s switchable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.off.Load() || (s.ro.Load() && r.Method != http.MethodGet && r.Method != http.MethodHead) {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	s.on.ServeHTTP(w, r)
}

// noFolders checks that no turn left a folder on the machine: the next
// tenant of this environment finds nothing of this one.
func (r *rig) noFolders() {
	r.t.Helper()
	for _, root := range []string{"work", "claude"} {
		if entries, _ := os.ReadDir(filepath.Join(r.root, root)); len(entries) != 0 {
			r.t.Fatalf("a turn left %v in %s", entries, root)
		}
	}
}

// saved reads a file of a conversation's working folder as the workspace
// saved it: no turn leaves its folders on the machine.
func (r *rig) saved(convID, name string) ([]byte, error) {
	r.t.Helper()
	dir := r.t.TempDir()
	f := workspace.Folders{Config: filepath.Join(dir, "config"), Work: filepath.Join(dir, "work")}
	if err := r.ws.Restore(context.Background(), r.user, convID, r.conversation(convID).Workspace, f); err != nil {
		r.t.Fatal(err)
	}
	return os.ReadFile(filepath.Join(f.Work, name))
}

// testConfig is how the service runs turns, as app wires it: the model
// proxy in front of upstream with the test key, and a sandbox of the mode
// this process gets (a user per turn when the tests run as root).
func testConfig(t *testing.T, cli, upstream, root string) turn.Config {
	t.Helper()
	if upstream == "" {
		upstream = "http://127.0.0.1:9" // nothing listens: the fake CLI calls no model
	}
	proxy, err := modelproxy.New(modelproxy.Options{Provider: ovrlrd.Anthropic, Upstream: upstream, Credential: testKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	work, claudeDir := filepath.Join(root, "work"), filepath.Join(root, "claude")
	pool, err := sandbox.New(sandbox.Config{
		Mode:  sandbox.Detect(false),
		UIDs:  sandbox.Range{First: config.DefaultSandboxUIDs[0], Last: config.DefaultSandboxUIDs[1]},
		Roots: []string{work, claudeDir},
	})
	if err != nil {
		t.Fatal(err)
	}
	return turn.Config{
		CLIPath:     cli,
		WorkRoot:    work,
		ConfigRoot:  claudeDir,
		Timeout:     60 * time.Second,
		IdleTimeout: 30 * time.Second,
		Env:         claude.Env{Provider: ovrlrd.Anthropic},
		AllowList:   config.DefaultAllowedTools,
		// Live approvals wait as deployed unless a test shortens it.
		ApprovalTimeout: 5 * time.Minute,
		Models:          proxy,
		Sandbox:         pool,
	}
}

// testKey is the upstream credential: only the proxy holds it.
const testKey = "sk-ant-test-upstream-key"

// beginTurn begins a turn as the API does, with the default allow-list.
func (r *rig) beginTurn(req ovrlrd.TurnRequest) (ovrlrd.Turn, error) {
	return api.BeginTurn(context.Background(), r.store, req, api.TurnRules{AllowList: config.DefaultAllowedTools})
}

func (r *rig) begin(convID, message string, tools ...string) ovrlrd.Turn {
	r.t.Helper()
	j, err := r.beginTurn(turnRequest(r.user, convID, message, tools...))
	if err != nil {
		r.t.Fatalf("begin: %v", err)
	}
	return j
}

func (r *rig) run(j ovrlrd.Turn) (*recorder, turn.Outcome) {
	r.t.Helper()
	rec := &recorder{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o := r.svc.RunOutcome(ctx, j, rec)
	if n := rec.terminals(); n != 1 {
		r.t.Fatalf("%d terminal events: %v", n, rec.types())
	}
	return rec, o
}

func (r *rig) messages(convID string) []ovrlrd.Message {
	r.t.Helper()
	msgs, _, err := r.store.Messages(context.Background(), convID, ovrlrd.Page{Limit: 100})
	if err != nil {
		r.t.Fatal(err)
	}
	return msgs
}

func (r *rig) conversation(convID string) ovrlrd.Conversation {
	r.t.Helper()
	c, err := r.store.Conversation(context.Background(), r.user, convID)
	if err != nil {
		r.t.Fatal(err)
	}
	return c
}

// anthropic starts the loopback Messages API; title prompts get a title.
func anthropic(t *testing.T, script anthropicfake.Script) (*anthropicfake.Server, string) {
	return anthropicTitled(t, func() string { return "Greeting the assistant" }, script)
}

// anthropicTitled is anthropic with title prompts answered by title, and
// every other prompt by script ("Hi." without one).
func anthropicTitled(t *testing.T, title func() string, script ...anthropicfake.Script) (*anthropicfake.Server, string) {
	t.Helper()
	srv := anthropicfake.New(func(r anthropicfake.Request) anthropicfake.Reply {
		if strings.Contains(r.Prompt(), "Reply with only the title.") {
			return anthropicfake.Reply{Blocks: []anthropicfake.ReplyBlock{anthropicfake.Text(title())}}
		}
		if len(script) == 0 {
			return anthropicfake.Reply{Blocks: []anthropicfake.ReplyBlock{anthropicfake.Text("Hi.")}}
		}
		return script[0](r)
	})
	t.Cleanup(srv.Close)
	return srv, srv.URL
}

func awsTestConfig() aws.Config {
	return aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")}
}

// turnRequests are the stand-in's requests that belong to turns (not to
// title runs).
func turnRequests(srv *anthropicfake.Server) []anthropicfake.Request {
	var out []anthropicfake.Request
	for _, r := range srv.Requests() {
		if !strings.Contains(r.Prompt(), "Reply with only the title.") {
			out = append(out, r)
		}
	}
	return out
}

func turnRequest(user, conv, msg string, tools ...string) ovrlrd.TurnRequest {
	return ovrlrd.TurnRequest{UserID: user, ConversationID: conv, Message: msg, AllowedTools: tools}
}
