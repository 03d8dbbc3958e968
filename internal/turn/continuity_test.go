package turn_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ovrlrd/cloud/internal/anthropicfake"
	"github.com/ovrlrd/cloud/internal/claude"
	"github.com/ovrlrd/cloud/internal/claude/claudetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/relay"
	"github.com/ovrlrd/cloud/internal/sse"
	"github.com/ovrlrd/cloud/internal/turn"
	"github.com/ovrlrd/cloud/internal/workspace"
)

// syncLog collects the service's log lines.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *syncLog) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// withWorkspace gives the rig an S3 (gofakes3 on loopback) for the
// conversations' folders, and a log to read.
func (r *rig) withWorkspace(t *testing.T, cli string, env claude.Env) (*httptest.Server, *syncLog) {
	t.Helper()
	s3 := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(s3.Close)
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")}
	logs := &syncLog{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	ws := workspace.New(cfg, workspace.Options{Bucket: "sessions", Endpoint: s3.URL, MaxBytes: 50 << 20}, log)
	if err := ws.EnsureBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.svc = turn.New(r.store, turn.Config{
		CLIPath: cli, WorkRoot: filepath.Join(r.root, "work"), ConfigRoot: filepath.Join(r.root, "claude"),
		AllowList: []string{"Bash", "Write", "Read"}, Timeout: time.Minute, IdleTimeout: time.Minute, Env: env, Workspace: ws,
	}, log)
	return s3, logs
}

// failing answers every request with a 500.
type failing struct{}

func (failing) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusInternalServerError)
}

// wipe removes everything a turn left on this "environment": a turn after
// it runs as on a fresh Lambda execution environment.
func (r *rig) wipe(t *testing.T) {
	t.Helper()
	if err := os.RemoveAll(r.root); err != nil {
		t.Fatal(err)
	}
}

// Two turns with all local state wiped in between: the second still resumes
// the first (the model sees it) and finds the file the first one wrote.
func TestContinuityAcrossEnvironments(t *testing.T) {
	write := anthropicfake.ToolTurn(
		anthropicfake.Reply{Blocks: []anthropicfake.ReplyBlock{anthropicfake.ToolUse("Bash", map[string]any{"command": "echo kept > kept.txt", "description": "Write a file"})}},
		anthropicfake.Reply{Blocks: []anthropicfake.ReplyBlock{anthropicfake.Text("Wrote it.")}},
	)
	srv, env := anthropic(t, func(req anthropicfake.Request) anthropicfake.Reply {
		if strings.Contains(req.Prompt(), "still there") {
			return anthropicfake.Reply{Blocks: []anthropicfake.ReplyBlock{anthropicfake.Text("Yes.")}}
		}
		return write(req)
	})
	r := newRig(t, realCLI(t), env)
	r.withWorkspace(t, realCLI(t), env)

	j := r.begin("", "Write kept.txt", "Bash")
	if rec, _ := r.run(j); rec.last().Type != sse.Complete {
		t.Fatalf("turn one: %+v", rec.last())
	}
	file := filepath.Join(r.root, "work", j.ConversationID, "kept.txt")
	if b, err := os.ReadFile(file); err != nil || string(b) != "kept\n" {
		t.Fatalf("turn one did not write the file: %q %v", b, err)
	}

	r.wipe(t)
	before := len(turnRequests(srv))
	j2 := r.begin(j.ConversationID, "Is it still there?")
	if rec, _ := r.run(j2); rec.last().Type != sse.Complete {
		t.Fatalf("turn two on a fresh environment: %+v", rec.last())
	}
	first := turnRequests(srv)[before]
	var seen []string
	for _, m := range first.Messages {
		seen = append(seen, m.Text())
	}
	if all := strings.Join(seen, "\n"); !strings.Contains(all, "Write kept.txt") || !strings.Contains(all, "Wrote it.") {
		t.Fatalf("turn two did not carry turn one: %q", all)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "kept\n" {
		t.Fatalf("the file of turn one is gone: %q %v", b, err)
	}
}

// S3 down after a turn: the turn still completes and the failure is logged;
// the next turn saves again.
func TestWorkspaceSaveFailureIsRetriedAtTheNextTurn(t *testing.T) {
	r := newRig(t, claudetest.FakeCLI(t), claude.Env{})
	s3, logs := r.withWorkspace(t, claudetest.FakeCLI(t), claude.Env{})
	s3.Config.Handler = failing{} // S3 answers 500 to everything

	j := r.begin("", claudetest.Script("normal", "text", "one"))
	rec, o := r.run(j)
	if o.Kind != relay.Complete || rec.last().Type != sse.Complete {
		t.Fatalf("turn with S3 down: %+v", rec.last())
	}
	if !strings.Contains(logs.String(), "workspace save failed") {
		t.Fatalf("the failed save was not logged: %s", logs.String())
	}
	if msgs := r.messages(j.ConversationID); len(msgs) != 2 {
		t.Fatalf("messages %+v", msgs)
	}

	s3.Config.Handler = gofakes3.New(s3mem.New()).Server()
	ws := workspace.New(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("l", "l", "")},
		workspace.Options{Bucket: "sessions", Endpoint: s3.URL, MaxBytes: 1 << 20}, slog.New(slog.DiscardHandler))
	if err := ws.EnsureBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.run(r.begin(j.ConversationID, claudetest.Script("normal", "text", "two")))
	// The save went through now: a fresh environment gets the folders.
	fresh := t.TempDir()
	if err := ws.Restore(context.Background(), r.user, j.ConversationID, workspace.Folders{
		Config: filepath.Join(fresh, "c"), Work: filepath.Join(fresh, "w")}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(fresh, "c", "projects")); err != nil {
		t.Fatalf("the next turn did not save the transcript: %v", err)
	}
}

// Cost adds up on the conversation and the user's day; a spent budget
// refuses the next turn before any CLI starts.
func TestCostAndBudget(t *testing.T) {
	// The fake CLI reports $0.0012 a turn: two turns spend this budget.
	r := fakeRig(t, func(c *turn.Config) { c.DailyBudgetUSD = 0.002 })
	j := r.begin("", claudetest.Script("normal"))
	r.run(j)
	r.run(r.begin(j.ConversationID, claudetest.Script("normal")))
	c := r.conversation(j.ConversationID)
	day, _ := r.store.UsageToday(context.Background(), r.user)
	if c.TurnCount != 2 || c.CostUSD <= 0 || day.CostUSD != c.CostUSD || day.Turns != 2 || c.InputTokens == 0 {
		t.Fatalf("conversation %+v, day %+v", c, day)
	}
	_, err := r.svc.Begin(context.Background(), turnRequest(r.user, j.ConversationID, claudetest.Script("normal")))
	if !ovrlrd.IsCode(err, ovrlrd.ERATELIMIT) || !strings.Contains(ovrlrd.ErrorMessage(err), "daily budget") {
		t.Fatalf("after the budget: %v", err)
	}
	if msgs := r.messages(j.ConversationID); len(msgs) != 4 {
		t.Fatalf("a refused turn wrote something: %d messages", len(msgs))
	}
}
