package turn_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ovrlrd/cloud/internal/devkit/anthropicfake"
	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/sse"
	"github.com/ovrlrd/cloud/internal/store"
	"github.com/ovrlrd/cloud/internal/turn"
	"github.com/ovrlrd/cloud/internal/workspace"
)

// The tests in this file prove that nothing a user saw is lost when the
// turn's folders, its lease or its title misbehave.

// withStore rebuilds the rig's service over st (the real store, with one
// call changed).
func (r *rig) withStore(cli string, st turn.Store) {
	cfg := testConfig(r.t, cli, "", r.root)
	cfg.Workspace, cfg.WorkspaceMaxBytes = r.ws, 50<<20
	r.svc = turn.New(st, cfg, slog.New(slog.NewJSONHandler(r.logs, nil)))
}

// assistant reports whether an assistant message says text.
func assistant(msgs []ovrlrd.Message, text string) bool {
	for _, m := range msgs {
		if m.Role == ovrlrd.RoleAssistant && m.Content == text {
			return true
		}
	}
	return false
}

// A restore that fails for a passing reason fails the turn before the CLI
// runs, and changes nothing: the next turn resumes as if it never happened.
func TestAFailedRestoreFailsTheTurnBeforeTheCLI(t *testing.T) {
	r := fakeRig(t)
	j := r.begin("", claudetest.Script("normal", "text", "one"))
	r.run(j)
	before := r.conversation(j.ConversationID)

	r.s3Off.Store(true)
	_, o := r.run(r.begin(j.ConversationID, claudetest.Script("normal", "text", "never")))
	r.s3Off.Store(false)
	if o.Kind != ovrlrd.OutcomeError || !strings.Contains(o.Message, "Could not restore") {
		t.Fatalf("outcome %+v", o)
	}
	msgs := r.messages(j.ConversationID)
	if assistant(msgs, "never") {
		t.Fatal("the CLI ran on folders that were not restored")
	}
	if after := r.conversation(j.ConversationID); after.Workspace != before.Workspace || *after.ClaudeSessionID != *before.ClaudeSessionID {
		t.Fatalf("a failed restore changed the conversation: %+v, was %+v", after, before)
	}
	r.noFolders()
	if _, o := r.run(r.begin(j.ConversationID, claudetest.Script("normal", "text", "three"))); o.Kind != ovrlrd.OutcomeComplete {
		t.Fatalf("the turn after: %+v", o)
	}
}

// A conversation whose read failed ends the turn before its CLI, with the
// session and folders it had, and the next turn runs.
func TestAnUnreadConversationFailsTheTurnBeforeTheCLI(t *testing.T) {
	r := fakeRig(t)
	j := r.begin("", claudetest.Script("normal", "text", "one"))
	r.run(j)
	before := r.conversation(j.ConversationID)

	next := r.begin(j.ConversationID, claudetest.Script("normal", "text", "never"))
	next.Found = func(context.Context) (ovrlrd.Conversation, error) {
		return ovrlrd.Conversation{}, errors.New("the read failed")
	}
	if _, o := r.run(next); o.Kind != ovrlrd.OutcomeError || !strings.Contains(o.Message, "Could not read the conversation") {
		t.Fatalf("outcome %+v", o)
	}
	if assistant(r.messages(j.ConversationID), "never") {
		t.Fatal("the CLI ran without its conversation's session")
	}
	if after := r.conversation(j.ConversationID); after.Workspace != before.Workspace || *after.ClaudeSessionID != *before.ClaudeSessionID {
		t.Fatalf("a failed read changed the conversation: %+v, was %+v", after, before)
	}
	if _, o := r.run(r.begin(j.ConversationID, claudetest.Script("normal", "text", "three"))); o.Kind != ovrlrd.OutcomeComplete {
		t.Fatalf("the turn after: %+v", o)
	}

	// Not found: deleted since the start, which the client is told.
	gone := r.begin(j.ConversationID, claudetest.Script("normal", "text", "never"))
	gone.Found = func(context.Context) (ovrlrd.Conversation, error) {
		return ovrlrd.Conversation{}, ovrlrd.Errorf(ovrlrd.ENOTFOUND, "Conversation not found.")
	}
	if rec, _ := r.run(gone); rec.last().Message != "This conversation was deleted." {
		t.Fatalf("terminal %+v", rec.last())
	}
}

// Saved folders that are gone for good (the bucket's lifecycle expired
// them) end the turn with a clear error, and the conversation starts afresh
// on the next message instead of failing for ever.
func TestExpiredFoldersStartTheConversationAfresh(t *testing.T) {
	r := fakeRig(t)
	j := r.begin("", claudetest.Script("normal", "text", "one"))
	r.run(j)
	c := r.conversation(j.ConversationID)
	if err := r.ws.Discard(context.Background(), r.user, j.ConversationID, c.Workspace); err != nil {
		t.Fatal(err)
	}
	r.contextLostThenAfresh(j.ConversationID)
}

// contextLostThenAfresh runs a turn that finds its earlier context gone,
// then one more: the first says so and forgets the session, the next starts
// afresh and keeps its own.
func (r *rig) contextLostThenAfresh(convID string) {
	r.t.Helper()
	_, o := r.run(r.begin(convID, claudetest.Script("normal", "text", "never")))
	if o.Kind != ovrlrd.OutcomeError || !strings.Contains(o.Message, "could not be restored") {
		r.t.Fatalf("outcome %+v", o)
	}
	if msgs := r.messages(convID); assistant(msgs, "never") {
		r.t.Fatal("the CLI's answer without its context was kept as if it continued")
	}
	if c := r.conversation(convID); c.ClaudeSessionID != nil || c.Workspace != "" {
		r.t.Fatalf("the lost session is still named: %+v", c)
	}
	if _, o := r.run(r.begin(convID, claudetest.Script("normal", "text", "afresh"))); o.Kind != ovrlrd.OutcomeComplete {
		r.t.Fatalf("the turn after: %+v", o)
	}
	if c := r.conversation(convID); c.ClaudeSessionID == nil || c.Workspace == "" {
		r.t.Fatalf("the fresh session was not kept: %+v", c)
	}
}

// Folders restored without the transcript: the CLI says "No conversation
// found", and the session is forgotten rather than resumed again and again.
func TestNoConversationFoundForgetsTheSession(t *testing.T) {
	r := fakeRig(t)
	j := r.begin("", claudetest.Script("normal", "text", "one"))
	r.run(j)
	// Name a version whose folders hold no transcript, as a stale archive
	// would.
	empty := t.TempDir()
	v, err := r.ws.Save(context.Background(), r.user, j.ConversationID, workspace.Folders{Config: filepath.Join(empty, "c"), Work: filepath.Join(empty, "w")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.store.StartTurn(context.Background(), ovrlrd.TurnStart{UserID: r.user, ConversationID: j.ConversationID,
		Message: ovrlrd.NewMessage{Role: ovrlrd.RoleUser, Content: "x"}, Holder: "h", Lease: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if err := r.store.FinishTurn(context.Background(), ovrlrd.TurnFinish{UserID: r.user, ConversationID: j.ConversationID, Holder: "h", Workspace: v}); err != nil {
		t.Fatal(err)
	}

	r.contextLostThenAfresh(j.ConversationID)
}

// Folders above the cap are refused as the turn's outcome: the user knows,
// the answer is kept, and no archive is left for a later turn to restore
// as if it were current.
func TestFoldersAboveTheCapAreTold(t *testing.T) {
	r := fakeRig(t)
	small := workspace.New(awsTestConfig(), workspace.Options{Bucket: "sessions", Endpoint: r.s3.URL, MaxBytes: 16}, slog.New(slog.DiscardHandler))
	cfg := testConfig(t, claudetest.FakeCLI(t), "", r.root)
	cfg.Workspace, cfg.WorkspaceMaxBytes = small, 16
	r.svc = turn.New(r.store, cfg, slog.New(slog.DiscardHandler))

	j := r.begin("", claudetest.Script("normal", "text", "kept anyway"))
	_, o := r.run(j)
	if o.Kind != ovrlrd.OutcomeError || !strings.Contains(o.Message, "larger than") {
		t.Fatalf("outcome %+v", o)
	}
	if !assistant(r.messages(j.ConversationID), "kept anyway") {
		t.Fatal("the answer was not kept")
	}
	if c := r.conversation(j.ConversationID); c.Workspace != "" || c.ClaudeSessionID != nil {
		t.Fatalf("the conversation names folders that were not saved: %+v", c)
	}
}

// stalling scripts a CLI that writes its init and text at once, then
// nothing for a minute.
func stalling(text string) string {
	line := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	msg := func(s string) string {
		return line(map[string]any{"type": "assistant", "message": map[string]any{"content": []any{map[string]any{"type": "text", "text": s}}}})
	}
	return claudetest.Script("lines", "delay_ms", 60_000, "lines", []any{
		line(map[string]any{"type": "system", "subtype": "init", "session_id": "s-1"}) + "\n" + msg(text),
		msg(" never sent"),
	})
}

// stealing is the store, where the first renewal after signal finds that
// another turn took the conversation over (its lease had expired).
type stealing struct {
	*store.Store
	signal <-chan struct{}
	once   sync.Once
}

func (s *stealing) RenewRun(ctx context.Context, convID, holder string, l time.Duration) (ovrlrd.Run, error) {
	select {
	case <-s.signal:
		s.once.Do(func() {
			_ = storetest.HoldRun(ctx, convID, "another turn", time.Now(), time.Minute)
		})
	default:
	}
	return s.Store.RenewRun(ctx, convID, holder, l)
}

// signalling is a Sink that closes first when the first chunk arrives.
type signalling struct {
	recorder
	first chan struct{}
	once  sync.Once
}

func (s *signalling) Send(e sse.Event) error {
	if e.Type == sse.Chunk {
		s.once.Do(func() { close(s.first) })
	}
	return s.recorder.Send(e)
}

// A turn whose lease was taken over is told apart from a deleted
// conversation: it stops, keeps what its user saw, and leaves the session,
// the folders and the lease to the turn that holds them.
func TestALostLeaseKeepsTheAnswer(t *testing.T) {
	r := fakeRig(t)
	sink := &signalling{first: make(chan struct{})}
	r.withStore(claudetest.FakeCLI(t), &stealing{Store: r.store, signal: sink.first})
	j := r.begin("", stalling("streamed before the loss"))
	o := r.svc.RunOutcome(context.Background(), j, sink)
	if o.Kind != ovrlrd.OutcomeError || !strings.Contains(o.Message, "lost its hold") || strings.Contains(o.Message, "deleted") {
		t.Fatalf("outcome %+v", o)
	}
	if !assistant(r.messages(j.ConversationID), "streamed before the loss") {
		t.Fatalf("the streamed answer was dropped: %+v", r.messages(j.ConversationID))
	}
	c := r.conversation(j.ConversationID)
	run, err := r.store.Run(context.Background(), j.ConversationID)
	if c.Workspace != "" || c.ClaudeSessionID != nil || err != nil || run.Holder != "another turn" {
		t.Fatalf("conversation %+v, lease %+v %v", c, run, err)
	}
}

// hanging is the store whose renewals never answer.
type hanging struct{ *store.Store }

func (hanging) RenewRun(ctx context.Context, _, _ string, _ time.Duration) (ovrlrd.Run, error) {
	<-ctx.Done()
	return ovrlrd.Run{}, ctx.Err()
}

// Renewals that hang: the turn stops before its lease could run out and
// saves what it has, instead of running on while another turn may take
// the conversation.
func TestAnUnrenewedLeaseStopsTheTurn(t *testing.T) {
	r := fakeRig(t)
	t.Cleanup(turn.ShortenLease(3*time.Second, 2*time.Second, 50*time.Millisecond))
	r.withStore(claudetest.FakeCLI(t), hanging{r.store})
	j := r.begin("", stalling("partial"))
	_, o := r.run(j)
	if o.Kind != ovrlrd.OutcomeError || !strings.Contains(o.Message, "did not answer") {
		t.Fatalf("outcome %+v", o)
	}
	if !assistant(r.messages(j.ConversationID), "partial") {
		t.Fatalf("what the user saw was not kept: %+v", r.messages(j.ConversationID))
	}
}

// A buffered turn's error is where GET /chat/{id} shows it: nobody
// streamed it, and the id of its outcome record never reached the client.
func TestABufferedTurnsErrorIsAMessage(t *testing.T) {
	r := fakeRig(t)
	j := r.begin("", claudetest.Script("error", "status", 529))
	j.Buffered = true
	r.svc.Run(context.Background(), j, nil)
	msgs := r.messages(j.ConversationID)
	if last := msgs[len(msgs)-1]; last.Role != ovrlrd.RoleSystem || !strings.Contains(last.Content, "unavailable") {
		t.Fatalf("messages %+v", msgs)
	}
}

// A conversation whose first turn asked for permission is titled by its
// first completed turn.
func TestTheFirstCompletedTurnTitles(t *testing.T) {
	r := fakeRig(t)
	// The title must not lose its race with the turn on a busy machine.
	t.Cleanup(turn.SetTitleTimes(time.Minute, time.Minute))
	j := r.begin("", claudetest.Script("denied"))
	if _, o := r.run(j); o.Kind != ovrlrd.OutcomePermissionRequired {
		t.Fatalf("first turn %+v", o)
	}
	if c := r.conversation(j.ConversationID); c.Title != nil {
		t.Fatalf("titled after permission_required: %q", *c.Title)
	}
	if _, o := r.run(r.begin(j.ConversationID, claudetest.Script("normal", "text", "done"))); o.Kind != ovrlrd.OutcomeComplete {
		t.Fatalf("second turn %+v", o)
	}
	if c := r.conversation(j.ConversationID); c.Title == nil || *c.Title != "Fake title" {
		t.Fatalf("not titled by its first completed turn: %+v", c)
	}
}

// A title that does not come does not hold the terminal event: the turn
// ends while the title's model call is still unanswered, untitled; the
// next completed turn makes the title. The turn's own answer waits for the
// title's request, so the title run cannot lose its race to start on a busy
// machine.
func TestASlowTitleDoesNotHoldTheTurn(t *testing.T) {
	release, arrived := make(chan struct{}), make(chan struct{})
	var once sync.Once
	_, env := anthropicTitled(t, func() string {
		once.Do(func() { close(arrived) })
		<-release
		return "Too late"
	}, func(anthropicfake.Request) anthropicfake.Reply {
		select {
		case <-arrived:
		case <-release:
		}
		return anthropicfake.Reply{Blocks: []anthropicfake.ReplyBlock{anthropicfake.Text("Hi.")}}
	})
	defer close(release)
	t.Cleanup(turn.SetTitleTimes(10*time.Minute, 0))
	r := newRig(t, claudetest.RealCLI(t), env)

	j := r.begin("", "hello")
	done := make(chan turn.Outcome, 1)
	go func() { _, o := r.run(j); done <- o }()
	select {
	case o := <-done:
		if o.Kind != ovrlrd.OutcomeComplete {
			t.Fatalf("outcome %+v", o)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the turn waited for its title")
	}
	select {
	case <-arrived:
	default:
		t.Fatal("the turn ended before its title's request came in")
	}
	if c := r.conversation(j.ConversationID); c.Title != nil {
		t.Fatalf("title %q", *c.Title)
	}
}

// deletingFirst is the store where the conversation is deleted, S3 cleanup
// included, just before the turn saves its end: the DELETE that a client
// sends the moment it saw the answer.
type deletingFirst struct {
	*store.Store
	ws *workspace.Store
}

func (d deletingFirst) FinishTurn(ctx context.Context, f ovrlrd.TurnFinish) error {
	if err := d.DeleteConversation(ctx, f.UserID, f.ConversationID); err != nil {
		return err
	}
	if err := d.ws.DeleteConversation(ctx, f.UserID, f.ConversationID); err != nil {
		return err
	}
	return d.Store.FinishTurn(ctx, f)
}

// A delete that lands between the save of the folders and the save of the
// turn leaves nothing: the folders saved a moment before are discarded,
// not re-created for a conversation that is gone.
func TestADeleteDuringTheSaveLeavesNoFolders(t *testing.T) {
	r := fakeRig(t)
	r.withStore(claudetest.FakeCLI(t), deletingFirst{Store: r.store, ws: r.ws})
	j := r.begin("", claudetest.Script("normal", "text", "answer"))
	rec := &recorder{}
	r.svc.Run(context.Background(), j, rec)
	if last := rec.last(); last.Type != sse.Error || !strings.Contains(last.Message, "deleted") {
		t.Fatalf("terminal %+v", last)
	}
	if keys := r.objects("users/" + r.user + "/conversations/" + j.ConversationID + "/"); len(keys) != 0 {
		t.Fatalf("a deleted conversation's folders were saved: %v", keys)
	}
	if msgs, _, _ := r.store.Messages(context.Background(), j.ConversationID, ovrlrd.Page{Limit: 10}); len(msgs) != 0 {
		t.Fatalf("%d messages written after the delete", len(msgs))
	}
	r.noFolders()
}

// objects lists the bucket's keys under prefix.
func (r *rig) objects(prefix string) []string {
	r.t.Helper()
	c := s3.NewFromConfig(awsTestConfig(), func(o *s3.Options) { o.BaseEndpoint = aws.String(r.s3.URL); o.UsePathStyle = true })
	out, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("sessions"), Prefix: aws.String(prefix)})
	if err != nil {
		r.t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}
