package turn_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ovrlrd/cloud/internal/anthropicfake"
	"github.com/ovrlrd/cloud/internal/claude"
	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/relay"
	"github.com/ovrlrd/cloud/internal/sse"
	"github.com/ovrlrd/cloud/internal/store"
	"github.com/ovrlrd/cloud/internal/store/storetest"
	"github.com/ovrlrd/cloud/internal/turn"
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
	if r.failAt > 0 && len(r.events)+1 >= r.failAt {
		return errors.New("client gone")
	}
	r.events = append(r.events, e)
	return nil
}

func (r *recorder) Ping() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pings++
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
}

// newRig runs turns with the CLI at cli, the real one by default.
func newRig(t *testing.T, cli string, env claude.Env, mutate ...func(*turn.Config)) *rig {
	t.Helper()
	root := t.TempDir()
	cfg := turn.Config{
		CLIPath:     cli,
		WorkRoot:    filepath.Join(root, "work"),
		ConfigRoot:  filepath.Join(root, "claude"),
		AllowList:   config.DefaultAllowedTools,
		Timeout:     60 * time.Second,
		IdleTimeout: 30 * time.Second,
		Env:         env,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	st := storetest.New(t)
	return &rig{t: t, store: st, svc: turn.New(st, cfg, slog.New(slog.DiscardHandler)), root: root, user: uuid.NewString()}
}

func (r *rig) begin(convID, message string, tools ...string) turn.Job {
	r.t.Helper()
	j, err := r.svc.Begin(context.Background(), turn.Request{UserID: r.user, ConversationID: convID, Message: message, AllowedTools: tools})
	if err != nil {
		r.t.Fatalf("begin: %v", err)
	}
	return j
}

func (r *rig) run(j turn.Job) (*recorder, relay.Outcome) {
	r.t.Helper()
	rec := &recorder{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o := r.svc.Run(ctx, j, rec)
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

// realCLI is the Claude Code CLI that `make deps` installs.
func realCLI(t *testing.T) string {
	t.Helper()
	dir, _ := os.Getwd()
	for {
		p := filepath.Join(dir, "node_modules", ".bin", "claude")
		if _, err := os.Stat(p); err == nil {
			return p
		}
		if parent := filepath.Dir(dir); parent != dir {
			dir = parent
			continue
		}
		t.Fatal("the Claude Code CLI is not installed; run `make deps`")
	}
}

// anthropic starts the loopback Messages API; title prompts get a title.
func anthropic(t *testing.T, script anthropicfake.Script) (*anthropicfake.Server, claude.Env) {
	t.Helper()
	srv := anthropicfake.New(func(r anthropicfake.Request) anthropicfake.Reply {
		if strings.Contains(r.Prompt(), "Reply with only the title.") {
			return anthropicfake.Reply{Blocks: []anthropicfake.ReplyBlock{anthropicfake.Text("Greeting the assistant")}}
		}
		return script(r)
	})
	t.Cleanup(srv.Close)
	return srv, claude.Env{Provider: claude.Anthropic, Credential: "test-key", BaseURL: srv.URL}
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

func turnRequest(user, conv, msg string, tools ...string) turn.Request {
	return turn.Request{UserID: user, ConversationID: conv, Message: msg, AllowedTools: tools}
}

// runSlow runs a turn that is expected to be stopped from outside.
func (r *rig) runSlow(j turn.Job) (*recorder, relay.Outcome) { return r.run(j) }
