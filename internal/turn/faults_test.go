package turn_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/claude"
	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/sse"
	"github.com/ovrlrd/cloud/internal/turn"
)

// The tests in this file drive a scripted fake CLI for faults the real one
// cannot be made to show on demand.

func fakeRig(t *testing.T, mutate ...func(*turn.Config)) *rig {
	t.Helper()
	t.Cleanup(turn.Shorten(100*time.Millisecond, time.Hour, 0))
	r := newRig(t, claudetest.FakeCLI(t), "", mutate...)
	t.Cleanup(func() { claudetest.AssertNoRunProcesses(t, claude.RunMarkerVar) })
	return r
}

func TestCrashMidStream(t *testing.T) {
	r := fakeRig(t)
	j := r.begin("", claudetest.Script("crash", "n", 2))
	rec, o := r.run(j)
	if o.Kind != ovrlrd.OutcomeError || rec.last().Message != "Claude stopped unexpectedly (exit code 1)." {
		t.Fatalf("terminal %+v", rec.last())
	}
	// What was produced before the crash is kept: both texts, nothing more.
	if msgs := r.messages(j.ConversationID); len(msgs) != 2 || msgs[1].Role != ovrlrd.RoleAssistant || msgs[1].Content != "part 0part 1" {
		t.Fatalf("messages %+v", msgs)
	}
}

func TestSilencePastTheIdleDeadline(t *testing.T) {
	r := fakeRig(t, func(c *turn.Config) { c.IdleTimeout, c.Timeout = 700*time.Millisecond, time.Hour })
	rec := r.runUntilItsDeadline(r.begin("", claudetest.Script("silent")))
	if rec.last().Type != sse.Error || rec.last().Message != "Request timed out" {
		t.Fatalf("terminal %+v", rec.last())
	}
}

func TestOutputPastTheTotalDeadline(t *testing.T) {
	r := fakeRig(t, func(c *turn.Config) { c.Timeout, c.IdleTimeout = 1500*time.Millisecond, time.Hour })
	rec := r.runUntilItsDeadline(r.begin("", claudetest.Script("slow-total")))
	if rec.last().Message != "Request timed out" {
		t.Fatalf("terminal %+v", rec.last())
	}
}

// A CLI that ignores SIGTERM, with a child in its own session that ignores
// it too: both are gone when the turn returns (checked in cleanup).
func TestChildrenThatIgnoreSIGTERMAreKilled(t *testing.T) {
	r := fakeRig(t, func(c *turn.Config) { c.Timeout, c.IdleTimeout = time.Second, time.Hour })
	rec := r.runUntilItsDeadline(r.begin("", claudetest.Script("ignore-term")))
	if rec.last().Message != "Request timed out" {
		t.Fatalf("terminal %+v", rec.last())
	}
}

// runUntilItsDeadline runs j with no deadline of the test's: the one
// deadline the test set short is all that can end it (the others are an
// hour away), so a turn that missed it fails the test instead of ending
// for another reason.
func (r *rig) runUntilItsDeadline(j ovrlrd.Turn) *recorder {
	r.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r.t.Cleanup(cancel)
	rec := &recorder{}
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		r.svc.Run(ctx, j, rec)
	}()
	select {
	case <-ran:
	case <-time.After(time.Minute):
		r.t.Fatal("the turn ran on a minute past its deadline")
	}
	if n := rec.terminals(); n != 1 {
		r.t.Fatalf("%d terminal events: %v", n, rec.types())
	}
	return rec
}

func TestGarbageAndHugeLines(t *testing.T) {
	r := fakeRig(t)
	j := r.begin("", claudetest.Script("garbage"))
	rec, _ := r.run(j)
	if rec.last().Type != sse.Complete {
		t.Fatalf("terminal %+v", rec.last())
	}
	// The text after the garbage and the 20 MiB line still arrived.
	msgs := r.messages(j.ConversationID)
	if len(msgs) != 2 || msgs[1].Content != "after the garbage" {
		t.Fatalf("messages %+v", msgs)
	}
}

func TestMissingOrBrokenCLI(t *testing.T) {
	notExec := filepath.Join(t.TempDir(), "claude")
	os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644)
	for path, want := range map[string]string{
		"/nonexistent/claude": "not found",
		notExec:               "not executable",
	} {
		r := fakeRig(t, func(c *turn.Config) { c.CLIPath = path })
		rec, o := r.run(r.begin("", "hi"))
		if o.Kind != ovrlrd.OutcomeError || !strings.Contains(rec.last().Message, want) || strings.Contains(rec.last().Message, "/") {
			t.Fatalf("%s: terminal %+v, want %q and no path", path, rec.last(), want)
		}
	}
}

// The cancel comes once the first text reached the client; the rest of the
// answer would come only a minute later, so a turn that missed the cancel
// would keep it.
func TestCancelStopsTheTurnAndKeepsItsOutput(t *testing.T) {
	r := fakeRig(t)
	j := r.begin("", stalling("partial answer"))
	rec, _ := r.runStopped(j, func() error { return r.store.CancelRun(context.Background(), j.ConversationID) })
	if rec.last().Message != "Cancelled" {
		t.Fatalf("terminal %+v", rec.last())
	}
	if msgs := r.messages(j.ConversationID); len(msgs) != 2 || msgs[1].Content != "partial answer" {
		t.Fatalf("messages %+v", msgs)
	}
}

// Deleting the conversation mid-turn stops the turn and nothing is written.
func TestDeleteMidTurnWritesNothing(t *testing.T) {
	r := fakeRig(t)
	j := r.begin("", stalling("said before the delete"))
	rec, _ := r.runStopped(j, func() error {
		if err := r.store.DeleteConversation(context.Background(), r.user, j.ConversationID); err != nil {
			return err
		}
		// A batch of the turn's log that lands after the conversation's
		// sweep, as one in flight would.
		late := ovrlrd.EventBatch{TurnID: j.Holder, First: 1, Events: [][]byte{[]byte(`{"type":"chunk","content":"late"}`)}}
		return r.store.AppendEvents(context.Background(), j.ConversationID, late)
	})
	if rec.last().Type != sse.Error || !strings.Contains(rec.last().Message, "deleted") {
		t.Fatalf("terminal %+v", rec.last())
	}
	if _, err := r.store.Conversation(context.Background(), r.user, j.ConversationID); !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
		t.Fatalf("conversation: %v", err)
	}
	if msgs, _, _ := r.store.Messages(context.Background(), j.ConversationID, ovrlrd.Page{Limit: 10}); len(msgs) != 0 {
		t.Fatalf("%d messages written after the delete", len(msgs))
	}
	// What the log wrote after the conversation's sweep, the turn deletes.
	if evs, err := r.store.Events(context.Background(), j.ConversationID, j.Holder, 0); err != nil || len(evs) != 0 {
		t.Fatalf("%d events left in the log, %v", len(evs), err)
	}
	r.noFolders()
}

// runStopped runs j and calls stop once the turn's first text reached the
// client: the CLI is running and has said something.
func (r *rig) runStopped(j ovrlrd.Turn, stop func() error) (*recorder, turn.Outcome) {
	r.t.Helper()
	sink := &signalling{first: make(chan struct{})}
	ran := make(chan struct{})
	var stopper sync.WaitGroup
	stopper.Go(func() {
		select {
		case <-sink.first:
			if err := stop(); err != nil {
				r.t.Error(err)
			}
		case <-ran:
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o := r.svc.RunOutcome(ctx, j, sink)
	close(ran)
	stopper.Wait()
	if n := sink.terminals(); n != 1 {
		r.t.Fatalf("%d terminal events: %v", n, sink.types())
	}
	return &sink.recorder, o
}

// A client that leaves mid-turn: the turn still finishes and saves.
func TestClientDisconnectStillSaves(t *testing.T) {
	r := fakeRig(t)
	j := r.begin("", claudetest.Script("normal", "text", "kept for later"))
	rec := &recorder{failAt: 1}
	o := r.svc.RunOutcome(context.Background(), j, rec)
	if o.Kind != ovrlrd.OutcomeComplete {
		t.Fatalf("outcome %+v", o)
	}
	if msgs := r.messages(j.ConversationID); len(msgs) != 2 || msgs[1].Content != "kept for later" {
		t.Fatalf("messages %+v", msgs)
	}
}
