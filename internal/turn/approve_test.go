package turn_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/anthropicfake"
	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/sse"
	"github.com/ovrlrd/cloud/internal/store"
	"github.com/ovrlrd/cloud/internal/turn"
)

// The tests in this file run the real CLI, asking, against the model
// stand-in, which answers "RUN: <command>" with one Bash call of it and
// then "Done.".

// asked is a Sink that hands each permission_request to the test.
type asked struct {
	recorder
	requests chan ovrlrd.Approval
}

func newAsked() *asked { return &asked{requests: make(chan ovrlrd.Approval, 8)} }

func (a *asked) Send(e sse.Event) error {
	if e.Type == sse.PermissionRequest {
		a.requests <- *e.Approval
	}
	return a.recorder.Send(e)
}

// liveRig runs live turns of the real CLI; mutate changes its config.
func liveRig(t *testing.T, mutate ...func(*turn.Config)) (*rig, *anthropicfake.Server) {
	t.Helper()
	srv, env := anthropic(t, anthropicfake.Commands())
	return newRig(t, claudetest.RealCLI(t), env, mutate...), srv
}

func (r *rig) beginLive(command string) ovrlrd.Turn {
	r.t.Helper()
	req := turnRequest(r.user, "", anthropicfake.CommandPrefix+command)
	req.LiveApprovals = true
	j, err := r.beginTurn(req)
	if err != nil {
		r.t.Fatal(err)
	}
	return j
}

// request waits for the turn's next permission_request.
func (a *asked) request(t *testing.T, ended <-chan struct{}) ovrlrd.Approval {
	t.Helper()
	select {
	case req := <-a.requests:
		return req
	case <-ended:
		t.Fatalf("the turn ended without asking: %v %+v", a.types(), a.last())
	}
	panic("unreachable")
}

// liveTurn is a live turn running in the background, waiting on its first
// request.
type liveTurn struct {
	j     ovrlrd.Turn
	sink  *asked
	ended <-chan struct{}
	o     *turn.Outcome
	req   ovrlrd.Approval
}

// startLive runs a live turn of "RUN: command" until it asks.
func (r *rig) startLive(command string) *liveTurn {
	r.t.Helper()
	l := &liveTurn{j: r.beginLive(command), sink: newAsked()}
	l.ended, l.o = r.runInBackground(l.j, l.sink)
	l.req = l.sink.request(r.t, l.ended)
	return l
}

// noPending checks that nothing of convID waits for an answer.
func (r *rig) noPending(convID string) {
	r.t.Helper()
	if pending, err := r.store.PendingApprovals(context.Background(), convID); err != nil || len(pending) != 0 {
		r.t.Fatalf("still pending: %+v %v", pending, err)
	}
}

func (r *rig) answer(req ovrlrd.Approval, d ovrlrd.Decision, msg string) (ovrlrd.Approval, error) {
	a, _, err := r.store.DecideApproval(context.Background(), r.user, req.ConversationID, req.ID, d, msg)
	return a, err
}

// Allowed live, the tool runs in the same turn: the model sees its output
// in the one conversation it had, with no second run of the prompt.
func TestLiveApprovalAllow(t *testing.T) {
	r, srv := liveRig(t, func(c *turn.Config) { c.Timeout = 10 * time.Minute })
	l := r.startLive("echo live > out.txt; cat out.txt")
	j, sink, ended, o, req := l.j, l.sink, l.ended, l.o, l.req
	if req.ToolName != "Bash" || req.ConversationID != j.ConversationID || !strings.Contains(string(req.ToolInput), `"command":"echo live > out.txt; cat out.txt"`) {
		t.Fatalf("request %+v", req)
	}
	// The test's turn has two minutes: its request expires early enough
	// for the turn to end well after it (CLI deadline 30 s before, less
	// the reserve of 30 s), not after APPROVAL_TIMEOUT.
	if left := time.Until(time.Time(req.ExpiresAt)); left < 40*time.Second || left > 60*time.Second {
		t.Fatalf("expires in %v", left)
	}
	if pending, err := r.store.PendingApprovals(context.Background(), j.ConversationID); err != nil || len(pending) != 1 || pending[0].TurnID != j.Holder {
		t.Fatalf("pending %+v %v", pending, err)
	}
	if _, err := r.answer(req, ovrlrd.DecisionAllow, ""); err != nil {
		t.Fatal(err)
	}
	<-ended
	want := []string{sse.ToolStart, sse.PermissionRequest, sse.ToolEnd, sse.Chunk, sse.Complete}
	if got := sink.types(); !slices.Equal(got, want) || o.Kind != ovrlrd.OutcomeComplete {
		t.Fatalf("events %v, want %v; outcome %+v", got, want, *o)
	}
	if res := srv.ToolResults(); !slices.Equal(res, []string{"live"}) {
		t.Fatalf("tool results %q", res)
	}
	prompts := 0
	for _, q := range turnRequests(srv) {
		if strings.HasPrefix(q.Prompt(), anthropicfake.CommandPrefix) {
			prompts++
		}
	}
	if prompts != 1 {
		t.Fatalf("the prompt was sent %d times", prompts)
	}
	if msgs := r.messages(j.ConversationID); len(msgs) != 2 || msgs[1].Content != "Done." {
		t.Fatalf("messages %+v", msgs)
	}
	// Answered, it waits no more, and a second, other answer is refused.
	r.noPending(j.ConversationID)
	if _, err := r.answer(req, ovrlrd.DecisionDeny, ""); err != ovrlrd.ErrApprovalAnswered {
		t.Fatalf("other answer: %v", err)
	}
}

// Denied live, the model gets the denial with the user's message, answers
// without the tool, and the turn completes (no permission_required).
func TestLiveApprovalDeny(t *testing.T) {
	r, srv := liveRig(t)
	l := r.startLive("touch denied.txt")
	j, sink, ended, o, req := l.j, l.sink, l.ended, l.o, l.req
	if _, err := r.answer(req, ovrlrd.DecisionDeny, "not today"); err != nil {
		t.Fatal(err)
	}
	<-ended
	if o.Kind != ovrlrd.OutcomeComplete || sink.last().Type != sse.Complete {
		t.Fatalf("outcome %+v, events %v", *o, sink.types())
	}
	if res := srv.ToolResults(); len(res) != 1 || !strings.Contains(res[0], "The user denied this tool. Their message: not today") {
		t.Fatalf("tool results %q", res)
	}
	if _, err := os.Stat(filepath.Join(r.root, "work", j.ConversationID, "denied.txt")); !os.IsNotExist(err) {
		t.Fatalf("the denied tool ran: %v", err)
	}
}

// Unanswered, a request expires: the model is told, the turn goes on and
// ends with permission_required (the user never answered, and can still
// approve it the old way); a late answer is refused. The CLI's silence
// while it waited was longer than its idle timeout, which did not stop it.
func TestLiveApprovalExpires(t *testing.T) {
	t.Cleanup(turn.SetApprovalTimes(50*time.Millisecond, 0, 0))
	// The idle timeout is long enough for the CLI's start on a busy machine.
	r, srv := liveRig(t, func(c *turn.Config) { c.ApprovalTimeout, c.IdleTimeout = 12*time.Second, 5*time.Second })
	l := r.startLive("touch late.txt")
	o, req := l.o, l.req
	<-l.ended
	if o.Kind != ovrlrd.OutcomePermissionRequired || len(o.Denials) != 1 || o.Denials[0].ToolName != "Bash" {
		t.Fatalf("outcome %+v", *o)
	}
	if left := time.Until(time.Time(req.ExpiresAt)); left > 0 {
		t.Fatalf("ended %v before the request expired", left)
	}
	if res := srv.ToolResults(); len(res) != 1 || !strings.Contains(res[0], "did not answer in time") {
		t.Fatalf("tool results %q", res)
	}
	if _, err := r.answer(req, ovrlrd.DecisionAllow, ""); err != ovrlrd.ErrApprovalExpired {
		t.Fatalf("late answer: %v", err)
	}
}

// A cancel ends a turn that waits, and its request with it.
func TestLiveApprovalCancel(t *testing.T) {
	r, _ := liveRig(t)
	l := r.startLive("touch never.txt")
	j, ended, o, req := l.j, l.ended, l.o, l.req
	if err := r.store.CancelRun(context.Background(), j.ConversationID); err != nil {
		t.Fatal(err)
	}
	<-ended
	if o.Kind != ovrlrd.OutcomeError || o.Message != "Cancelled" {
		t.Fatalf("outcome %+v", *o)
	}
	if _, err := r.answer(req, ovrlrd.DecisionAllow, ""); err != ovrlrd.ErrApprovalExpired {
		t.Fatalf("answer after the cancel: %v", err)
	}
	r.noPending(j.ConversationID)
	r.noFolders()
}

// A tool the server does not allow is denied without asking anybody, and
// the turn ends as today's would, with permission_required: the user was
// never asked.
func TestLiveApprovalOnlyAllowedTools(t *testing.T) {
	r, srv := liveRig(t, func(c *turn.Config) { c.AllowList = []string{"Read"} })
	j := r.beginLive("touch nope.txt")
	sink := newAsked()
	ended, o := r.runInBackground(j, sink)
	<-ended
	if slices.Contains(sink.types(), sse.PermissionRequest) || o.Kind != ovrlrd.OutcomePermissionRequired ||
		len(o.Denials) != 1 || o.Denials[0].ToolName != "Bash" {
		t.Fatalf("events %v, outcome %+v", sink.types(), *o)
	}
	if res := srv.ToolResults(); len(res) != 1 || !strings.Contains(res[0], "does not allow the Bash tool") {
		t.Fatalf("tool results %q", res)
	}
}

// An input too large to show whole is not put to the user: an allow would
// run what they never saw.
func TestLiveApprovalInputTooLarge(t *testing.T) {
	r, srv := liveRig(t)
	j := r.beginLive("echo " + strings.Repeat("x", 40<<10) + " > big.txt")
	sink := newAsked()
	ended, o := r.runInBackground(j, sink)
	<-ended
	if slices.Contains(sink.types(), sse.PermissionRequest) || o.Kind != ovrlrd.OutcomePermissionRequired {
		t.Fatalf("events %v, outcome %+v", sink.types(), *o)
	}
	if res := srv.ToolResults(); len(res) != 1 || !strings.Contains(res[0], "too large to show") {
		t.Fatalf("tool results %.200q", res)
	}
}

// A request the CLI withdraws is closed at once, while the turn runs on:
// it is no longer pending, and nobody can answer it.
func TestLiveApprovalWithdrawn(t *testing.T) {
	r := fakeRig(t)
	closed := make(chan string, 8)
	r.withStore(claudetest.FakeCLI(t), closing{r.store, closed})
	j := r.begin("", claudetest.Script("ask-withdrawn", "n", 2))
	j.LiveApprovals = true
	sink := newAsked()
	ended, o := r.runInBackground(j, sink)
	first, second := sink.request(t, ended), sink.request(t, ended)
	// The turn waits on the second; the first is closed meanwhile.
	select {
	case id := <-closed:
		if id != first.ID {
			t.Fatalf("closed %s, want the withdrawn %s", id, first.ID)
		}
	case <-ended:
		t.Fatal("the turn ended before closing the withdrawn request")
	case <-time.After(20 * time.Second):
		t.Fatal("the withdrawn request was not closed while the turn waited")
	}
	if pending, err := r.store.PendingApprovals(context.Background(), j.ConversationID); err != nil || len(pending) != 1 || pending[0].ID != second.ID {
		t.Fatalf("pending while the turn waits on its second request: %+v %v", pending, err)
	}
	if _, err := r.answer(first, ovrlrd.DecisionAllow, ""); err != ovrlrd.ErrApprovalExpired {
		t.Fatalf("answer to a withdrawn request: %v", err)
	}
	if _, err := r.answer(second, ovrlrd.DecisionAllow, ""); err != nil {
		t.Fatal(err)
	}
	<-ended
	if o.Kind != ovrlrd.OutcomeComplete {
		t.Fatalf("outcome %+v", *o)
	}
}

// closing is the store, telling the test each request a turn closed.
type closing struct {
	*store.Store
	closed chan<- string
}

func (c closing) CloseApproval(ctx context.Context, convID, id string) (ovrlrd.Approval, error) {
	a, err := c.Store.CloseApproval(ctx, convID, id)
	c.closed <- id
	return a, err
}
