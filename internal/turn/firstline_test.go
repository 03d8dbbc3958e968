package turn_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/devkit/sandboxtest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/sse"
	"github.com/ovrlrd/cloud/internal/turn"
)

// sessions is a ModelGate that logs, in order, "open" for each model
// session opened (one for every CLI run, the title's included) and "close"
// for each one's first Close; closed is closed at the first.
type sessions struct {
	ovrlrd.ModelGate
	mu     sync.Mutex
	log    []string
	closed chan struct{}
}

func newSessions() *sessions { return &sessions{closed: make(chan struct{})} }

func (s *sessions) add(what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, what)
	if what == "close" && !slices.Contains(s.log[:len(s.log)-1], "close") {
		close(s.closed)
	}
}

func (s *sessions) Open(ctx context.Context) (ovrlrd.ModelSession, error) {
	m, err := s.ModelGate.Open(ctx)
	if err == nil {
		s.add("open")
		m = &loggedSession{ModelSession: m, close: sync.OnceFunc(func() { s.add("close") })}
	}
	return m, err
}

// opened is how many sessions were opened so far.
func (s *sessions) opened() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.log {
		if e == "open" {
			n++
		}
	}
	return n
}

type loggedSession struct {
	ovrlrd.ModelSession
	close func()
}

func (s *loggedSession) Close() { s.ModelSession.Close(); s.close() }

// counted makes the service count its CLI runs in s.
func counted(s *sessions) func(*turn.Config) {
	return func(c *turn.Config) { s.ModelGate, c.Models = c.Models, s }
}

// gate is a fifo that the fake CLI, with the script's "await" set to its
// path, reads to its end before its first line: the run waits there until
// the test lets it go.
type gate struct {
	t    *testing.T
	path string
}

func newGate(t *testing.T) *gate {
	t.Helper()
	p := filepath.Join(sandboxtest.Dir(t), "gate")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	// The CLI runs as the turn's own user.
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	return &gate{t: t, path: p}
}

// reached returns once the CLI waits at the gate, with what lets it go on;
// it fails the test if the turn ended first.
func (g *gate) reached(ended <-chan struct{}) (release func()) {
	g.t.Helper()
	opened := make(chan *os.File, 1)
	go func() {
		// Opening the writing end returns once a reader opened the other.
		f, _ := os.OpenFile(g.path, os.O_WRONLY, 0)
		opened <- f
	}()
	select {
	case f := <-opened:
		release = sync.OnceFunc(func() { f.Close() })
		g.t.Cleanup(release)
		return release
	case <-ended:
		// Nobody will read: be the reader, so the opener ends.
		if r, err := os.OpenFile(g.path, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			defer r.Close()
		}
		if f := <-opened; f != nil {
			f.Close()
		}
		g.t.Fatal("the turn ended before its CLI reached the gate")
		return nil
	}
}

// runInBackground runs j: ended is closed once it returned, and then
// outcome holds how it ended.
func (r *rig) runInBackground(j ovrlrd.Turn, sink sse.Sink) (ended <-chan struct{}, outcome *turn.Outcome) {
	done, o := make(chan struct{}), new(turn.Outcome)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	go func() {
		defer close(done)
		defer cancel()
		*o = r.svc.RunOutcome(ctx, j, sink)
	}()
	r.t.Cleanup(func() { <-done })
	return done, o
}

// The title run starts only once the turn's own CLI has written its first
// line: until then the turn's CLI has the cores to itself. The turn's CLI
// waits before that line until the test has counted the CLI runs started.
func TestTheTitleWaitsForTheTurnsFirstLine(t *testing.T) {
	cli := newSessions()
	r := fakeRig(t, counted(cli))
	// The title must not lose its race with the turn on a busy machine.
	t.Cleanup(turn.SetTitleTimes(time.Minute, time.Minute))
	g := newGate(t)
	j := r.begin("", claudetest.Script("normal", "text", "answer", "await", g.path))
	rec := &recorder{}
	ended, o := r.runInBackground(j, rec)

	let := g.reached(ended)
	before := cli.opened()
	let()
	<-ended
	if before != 1 {
		t.Fatalf("%d CLI runs had started before the turn's CLI wrote its first line: the title run did not wait for it", before)
	}
	if o.Kind != ovrlrd.OutcomeComplete || rec.last().Title != "Fake title" || cli.opened() != 2 {
		t.Fatalf("outcome %+v, terminal %+v, %d CLI runs: the title did not come after the first line", *o, rec.last(), cli.opened())
	}
}

// heldSink takes pings, and blocks on the first other event until release
// is closed; entered is closed when that event arrives.
type heldSink struct {
	recorder
	entered, release chan struct{}
	once             sync.Once
}

func (h *heldSink) Send(e sse.Event) error {
	if e.Type != sse.Ping {
		h.once.Do(func() { close(h.entered); <-h.release })
	}
	return h.recorder.Send(e)
}

// The title's CLI starts only once the turn's first event reached the
// client (the fake CLI never asks the model, which would open the gate
// too): while the client has not taken it, the turn's CLI runs to its end
// and closes its model session before the title run opens its own.
func TestTheTitleWaitsForTheFirstEventWritten(t *testing.T) {
	models := newSessions()
	r := fakeRig(t, counted(models))
	t.Cleanup(turn.SetTitleTimes(time.Minute, time.Minute))
	j := r.begin("", claudetest.Script("normal", "text", "answer"))
	sink := &heldSink{entered: make(chan struct{}), release: make(chan struct{})}
	ended, o := r.runInBackground(j, sink)
	for _, step := range []chan struct{}{sink.entered, models.closed} {
		select {
		case <-step:
		case <-ended:
			t.Fatal("the turn ended with its first event still held")
		}
	}
	close(sink.release)
	<-ended
	models.mu.Lock()
	log := strings.Join(models.log, " ")
	models.mu.Unlock()
	if log != "open close open close" {
		t.Fatalf("model sessions %q: the title's opened before the turn's first event was written", log)
	}
	if o.Kind != ovrlrd.OutcomeComplete || sink.last().Title != "Fake title" {
		t.Fatalf("outcome %+v, terminal %+v: the title was lost", *o, sink.last())
	}
}
