package turn_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/devkit/sandboxtest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/sse"
	"github.com/ovrlrd/cloud/internal/turn"
)

// sessions is a ModelGate that counts the model sessions opened: one for
// every CLI run, the title's included.
type sessions struct {
	ovrlrd.ModelGate
	n atomic.Int32
}

func (s *sessions) Open(ctx context.Context) (ovrlrd.ModelSession, error) {
	m, err := s.ModelGate.Open(ctx)
	if err == nil {
		s.n.Add(1)
	}
	return m, err
}

// opened is how many sessions were opened so far.
func (s *sessions) opened() int { return int(s.n.Load()) }

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
	cli := &sessions{}
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

// textCounter takes events, and closes third once it has taken three
// texts.
type textCounter struct {
	recorder
	n     int
	third chan struct{}
}

func (c *textCounter) Send(e sse.Event) error {
	if e.Type == sse.Chunk {
		if c.n++; c.n == 3 {
			close(c.third)
		}
	}
	return c.recorder.Send(e)
}

// A turn's CLI that answers without asking the model (the fake CLI never
// asks) leaves the title its end to wait for: an event handed to the
// client is not yet delivered, and a title CLI starting then would compete
// with its delivery. Three texts in (a fifth of a second after the first),
// the title's CLI has not started; the turn is then cancelled, and never
// starts it.
func TestTheTitleWaitsForTheEndOfACLIThatNeverAsks(t *testing.T) {
	models := &sessions{}
	r := fakeRig(t, counted(models))
	j := r.begin("", claudetest.Script("slow-total"))
	sink := &textCounter{third: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.svc.RunOutcome(ctx, j, sink)
	}()
	select {
	case <-sink.third:
	case <-done:
		t.Fatal("the turn ended before its third text")
	}
	during := models.opened()
	cancel()
	<-done
	if during != 1 || models.opened() != 1 {
		t.Fatalf("%d CLI runs during the turn, %d in all: the title did not wait for the turn's CLI to end", during, models.opened())
	}
}
