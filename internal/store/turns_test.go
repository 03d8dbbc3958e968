package store_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"
	"github.com/google/uuid"

	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/store"
)

func startTurn(t *testing.T, s *store.Store, uid, convID, holder string) (ovrlrd.Conversation, error) {
	t.Helper()
	started, err := s.StartTurn(context.Background(), ovrlrd.TurnStart{
		UserID: uid, ConversationID: convID, Holder: holder, Lease: time.Minute,
		Message: ovrlrd.NewMessage{Role: ovrlrd.RoleUser, Content: "hi"},
	})
	if err != nil {
		return ovrlrd.Conversation{}, err
	}
	return started.Conversation(context.Background())
}

// finish finishes a turn and returns the messages it stored, oldest first.
func finish(t *testing.T, s *store.Store, f ovrlrd.TurnFinish) []ovrlrd.Message {
	t.Helper()
	ctx := context.Background()
	if err := s.FinishTurn(ctx, f); err != nil {
		t.Fatal(err)
	}
	var out []ovrlrd.Message
	page := ovrlrd.Page{Limit: 100}
	for {
		got, next, err := s.Messages(ctx, f.ConversationID, page)
		if err != nil {
			t.Fatal(err)
		}
		// Each page is oldest first, and older than the page before it.
		out = append(slices.DeleteFunc(got, func(m ovrlrd.Message) bool { return m.Role == ovrlrd.RoleUser }), out...)
		if next == "" {
			return out
		}
		page.Cursor = next
	}
}

func TestTurnLifecycle(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	uid := uuid.NewString()

	// A new conversation: conversation, message and lease in one transaction.
	c, err := startTurn(t, s, uid, "", "run-1")
	if err != nil {
		t.Fatal(err)
	}
	if run, err := s.Run(ctx, c.ID); err != nil || run.Holder != "run-1" {
		t.Fatalf("lease: %+v %v", run, err)
	}
	// A second turn while the first runs is refused and writes nothing.
	if _, err := startTurn(t, s, uid, c.ID, "run-2"); !ovrlrd.IsCode(err, ovrlrd.ECONFLICT) {
		t.Fatalf("second turn: %v", err)
	}
	if msgs, _, _ := s.Messages(ctx, c.ID, ovrlrd.Page{Limit: 10}); len(msgs) != 1 {
		t.Fatalf("the refused turn wrote a message: %d", len(msgs))
	}

	// Finishing stores the segments in order, the session id and the title,
	// and frees the conversation.
	err = s.FinishTurn(ctx, ovrlrd.TurnFinish{
		UserID: uid, ConversationID: c.ID, Holder: "run-1",
		Segments: []string{"one", "two", "three"}, SessionID: "sess-1", Title: "A title",
		Outcome: ovrlrd.TurnOutcome{Kind: "complete", Text: "onetwothree"},
	})
	if err != nil {
		t.Fatal(err)
	}
	msgs, _, _ := s.Messages(ctx, c.ID, ovrlrd.Page{Limit: 10})
	if len(msgs) != 4 || msgs[1].Content != "one" || msgs[2].Content != "two" || msgs[3].Content != "three" ||
		msgs[3].Role != ovrlrd.RoleAssistant {
		t.Fatalf("messages %+v", msgs)
	}
	conv, _ := s.Conversation(ctx, uid, c.ID)
	if conv.ClaudeSessionID == nil || *conv.ClaudeSessionID != "sess-1" || conv.Title == nil || *conv.Title != "A title" ||
		conv.UpdatedAt.Time() != msgs[3].CreatedAt.Time() {
		t.Fatalf("conversation %+v", conv)
	}
	if o, err := s.Outcome(ctx, c.ID, "run-1"); err != nil || o.Kind != "complete" || o.Text != "onetwothree" {
		t.Fatalf("outcome %+v %v", o, err)
	}
	if _, err := s.Run(ctx, c.ID); !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
		t.Fatalf("lease not released: %v", err)
	}
	// The next turn may start; its outcome is not there until it finishes.
	if _, err := startTurn(t, s, uid, c.ID, "run-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Outcome(ctx, c.ID, "run-2"); !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
		t.Fatalf("outcome of a running turn: %v", err)
	}
}

// Deleting the conversation mid-turn takes the lease with it: the turn's
// finish then writes nothing at all.
func TestFinishAfterDeleteWritesNothing(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	uid := uuid.NewString()
	c, err := startTurn(t, s, uid, "", "run-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteConversation(ctx, uid, c.ID); err != nil {
		t.Fatal(err)
	}
	err = s.FinishTurn(ctx, ovrlrd.TurnFinish{UserID: uid, ConversationID: c.ID, Holder: "run-1", Segments: []string{"late"}})
	if !errors.Is(err, ovrlrd.ErrLeaseLost) {
		t.Fatalf("finish after delete: %v", err)
	}
	// Nor does the save of a turn that lost its lease: a deleted
	// conversation is not a lost lease.
	err = s.FinishTurn(ctx, ovrlrd.TurnFinish{UserID: uid, ConversationID: c.ID, Holder: "run-1", Segments: []string{"late"}, Unleased: true})
	if !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
		t.Fatalf("unleased finish after delete: %v", err)
	}
	var items []struct{ PK, SK string }
	if err := storetest.DB().Table(storetest.TableName()).Get("PK", "CONV#"+c.ID).Consistent(true).All(ctx, &items); err != nil || len(items) != 0 {
		t.Fatalf("left behind: %v %v", items, err)
	}
}

func TestFinishByAnotherHolderWritesNothing(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	uid := uuid.NewString()
	c, _ := startTurn(t, s, uid, "", "run-1")
	err := s.FinishTurn(ctx, ovrlrd.TurnFinish{UserID: uid, ConversationID: c.ID, Holder: "intruder", Segments: []string{"x"}})
	if !errors.Is(err, ovrlrd.ErrLeaseLost) {
		t.Fatalf("got %v", err)
	}
	if msgs, _, _ := s.Messages(ctx, c.ID, ovrlrd.Page{Limit: 10}); len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
}

// An expired lease (its holder died) does not lock the conversation.
func TestExpiredLeaseDoesNotLock(t *testing.T) {
	t.Parallel()
	now := time.Now()
	clock := func() time.Time { return now }
	s := store.New(storetest.DB(), store.Options{Table: storetest.TableName(), Now: clock})
	uid := uuid.NewString()
	c, _ := startTurn(t, s, uid, "", "dead")
	now = now.Add(2 * time.Minute)
	if _, err := startTurn(t, s, uid, c.ID, "alive"); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
}

func TestLongOutputFitsOneTransaction(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	uid := uuid.NewString()
	c, _ := startTurn(t, s, uid, "", "run-1")
	segs := make([]string, 150)
	for i := range segs {
		segs[i] = "s"
	}
	segs[0] = strings.Repeat("é", store.MaxContentBytes) // two messages' worth
	msgs := finish(t, s, ovrlrd.TurnFinish{UserID: uid, ConversationID: c.ID, Holder: "run-1", Segments: segs})
	total := 0
	for _, m := range msgs {
		total += len(m.Content)
		if len(m.Content) > store.MaxContentBytes {
			t.Fatalf("message of %d bytes", len(m.Content))
		}
	}
	if len(msgs) != 96 || total < len(segs[0])+149 {
		t.Fatalf("%d messages, %d bytes", len(msgs), total)
	}
	if last := msgs[len(msgs)-1].Content; !strings.HasPrefix(last, "s\n\ns\n\n") {
		t.Fatalf("overflow not kept apart by blank lines: %q", last[:min(len(last), 20)])
	}
}

// A turn's cost adds up on its conversation and on the user's day.
func TestTurnUsageAddsUp(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	uid := uuid.NewString()
	c, _ := startTurn(t, s, uid, "", "r1")
	for i, holder := range []string{"r1", "r2"} {
		if i > 0 {
			if _, err := startTurn(t, s, uid, c.ID, holder); err != nil {
				t.Fatal(err)
			}
		}
		err := s.FinishTurn(ctx, ovrlrd.TurnFinish{UserID: uid, ConversationID: c.ID, Holder: holder,
			Segments: []string{"x"}, Usage: ovrlrd.Usage{CostUSD: 0.125, InputTokens: 100, OutputTokens: 10}})
		if err != nil {
			t.Fatal(err)
		}
	}
	conv, _ := s.Conversation(ctx, uid, c.ID)
	if conv.TurnCount != 2 || conv.CostUSD != 0.25 || conv.InputTokens != 200 || conv.OutputTokens != 20 {
		t.Fatalf("conversation totals %+v", conv)
	}
	day, err := storetest.UsageToday(ctx, uid)
	if err != nil || day.Turns != 2 || day.CostUSD != 0.25 || day.InputTokens != 200 {
		t.Fatalf("day %+v %v", day, err)
	}
}

// A megabyte-long answer saves: its messages are split, and the outcome
// record keeps only a bounded part of the text.
func TestLargeAnswerSaves(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	uid := uuid.NewString()
	c, _ := startTurn(t, s, uid, "", "run-1")
	answer := strings.Repeat("✓ answer ", 120_000) // about 1.3 MB
	msgs := finish(t, s, ovrlrd.TurnFinish{UserID: uid, ConversationID: c.ID, Holder: "run-1",
		Segments: []string{answer}, Outcome: ovrlrd.TurnOutcome{Kind: "complete", Text: answer}})
	var joined strings.Builder
	for _, m := range msgs {
		joined.WriteString(m.Content)
	}
	if joined.String() != answer {
		t.Fatal("the saved messages do not add up to the answer")
	}
	o, err := s.Outcome(ctx, c.ID, "run-1")
	if err != nil || len(o.Text) > 64<<10 || !strings.HasPrefix(answer, o.Text) {
		t.Fatalf("outcome of %d bytes, %v", len(o.Text), err)
	}
}

// A 5 MB answer is kept up to a bound, with a marker saying the rest was
// cut, in one transaction under DynamoDB's 4 MB limit; before, the whole
// turn failed as "database unavailable".
func TestFiveMegabyteAnswerIsCutVisibly(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	uid := uuid.NewString()
	c, _ := startTurn(t, s, uid, "", "run-1")
	answer := strings.Repeat("five megabytes ", 5<<20/15)
	msgs := finish(t, s, ovrlrd.TurnFinish{UserID: uid, ConversationID: c.ID, Holder: "run-1",
		Segments: []string{"a first segment", answer, "a segment after the cut"}, Outcome: ovrlrd.TurnOutcome{Kind: "complete", Text: answer}})
	var joined strings.Builder
	for _, m := range msgs {
		joined.WriteString(m.Content)
	}
	kept := joined.String()
	if len(kept) < 2<<20 || len(kept) > 4<<20 || !strings.HasSuffix(kept, "[The rest of this answer was too long to keep.]") ||
		!strings.HasPrefix(kept, "a first segment"+"five megabytes ") {
		t.Fatalf("kept %d bytes ending %q", len(kept), kept[max(len(kept)-80, 0):])
	}
	stored, page := 0, ovrlrd.Page{Limit: 100}
	for {
		got, next, err := s.Messages(ctx, c.ID, page)
		if err != nil {
			t.Fatal(err)
		}
		stored += len(got)
		if next == "" {
			break
		}
		page.Cursor = next
	}
	if stored != len(msgs)+1 {
		t.Fatalf("%d messages stored, %d returned", stored, len(msgs))
	}
}

// Forget clears the session id and the folders' version together; a
// workspace version is recorded with the session id it goes with.
func TestWorkspaceVersionAndForget(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	uid := uuid.NewString()
	c, _ := startTurn(t, s, uid, "", "r1")
	if err := s.FinishTurn(ctx, ovrlrd.TurnFinish{UserID: uid, ConversationID: c.ID, Holder: "r1", SessionID: "s1", Workspace: "v1"}); err != nil {
		t.Fatal(err)
	}
	conv, _ := s.Conversation(ctx, uid, c.ID)
	if conv.Workspace != "v1" || conv.ClaudeSessionID == nil || *conv.ClaudeSessionID != "s1" {
		t.Fatalf("after a save: %+v", conv)
	}
	startTurn(t, s, uid, c.ID, "r2")
	if err := s.FinishTurn(ctx, ovrlrd.TurnFinish{UserID: uid, ConversationID: c.ID, Holder: "r2", SessionID: "s2", Forget: true,
		Notice: "The earlier context could not be restored."}); err != nil {
		t.Fatal(err)
	}
	conv, _ = s.Conversation(ctx, uid, c.ID)
	if conv.Workspace != "" || conv.ClaudeSessionID != nil {
		t.Fatalf("after forget: %+v", conv)
	}
	msgs, _, _ := s.Messages(ctx, c.ID, ovrlrd.Page{Limit: 10})
	if last := msgs[len(msgs)-1]; last.Role != ovrlrd.RoleSystem || !strings.Contains(last.Content, "could not be restored") {
		t.Fatalf("the notice is not the last message: %+v", msgs)
	}
}

// A turn whose lease another turn took keeps what its user saw, and never
// touches the session or the folders' version of the turn that holds it.
func TestUnleasedFinishKeepsTheAnswerOnly(t *testing.T) {
	t.Parallel()
	now := time.Now()
	s := store.New(storetest.DB(), store.Options{Table: storetest.TableName(), Now: func() time.Time { return now }})
	ctx := context.Background()
	uid := uuid.NewString()
	c, _ := startTurn(t, s, uid, "", "slow")
	now = now.Add(2 * time.Minute)
	if _, err := startTurn(t, s, uid, c.ID, "next"); err != nil {
		t.Fatal(err)
	}
	f := ovrlrd.TurnFinish{UserID: uid, ConversationID: c.ID, Holder: "slow", Segments: []string{"streamed"}, SessionID: "old", Workspace: "old"}
	if err := s.FinishTurn(ctx, f); !errors.Is(err, ovrlrd.ErrLeaseLost) {
		t.Fatalf("finish without the lease: %v", err)
	}
	f.Unleased = true
	if err := s.FinishTurn(ctx, f); err != nil {
		t.Fatal(err)
	}
	conv, _ := s.Conversation(ctx, uid, c.ID)
	msgs, _, _ := s.Messages(ctx, c.ID, ovrlrd.Page{Limit: 10})
	kept := slices.ContainsFunc(msgs, func(m ovrlrd.Message) bool { return m.Content == "streamed" && m.Role == ovrlrd.RoleAssistant })
	if conv.Workspace != "" || conv.ClaudeSessionID != nil || len(msgs) != 3 || !kept {
		t.Fatalf("conversation %+v, messages %+v", conv, msgs)
	}
	if run, err := s.Run(ctx, c.ID); err != nil || run.Holder != "next" {
		t.Fatalf("the other turn's lease: %+v %v", run, err)
	}
}

// A buffered turn's notice takes a message's place: with more segments than
// one transaction holds, the turn still saves, notice included.
func TestManySegmentsAndANoticeFitOneTransaction(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	uid := uuid.NewString()
	c, _ := startTurn(t, s, uid, "", "run-1")
	segs := make([]string, 150)
	for i := range segs {
		segs[i] = "s"
	}
	msgs := finish(t, s, ovrlrd.TurnFinish{UserID: uid, ConversationID: c.ID, Holder: "run-1", Segments: segs,
		Notice: "Request timed out", Outcome: ovrlrd.TurnOutcome{Kind: "error", Error: "Request timed out"}})
	if last := msgs[len(msgs)-1]; len(msgs) != 96 || last.Role != ovrlrd.RoleSystem {
		t.Fatalf("%d messages, the last %+v", len(msgs), last)
	}
}

// hook runs then, once, just before the first call of op that the store
// makes once armed.
type hook struct {
	op    string
	armed atomic.Bool
	then  func()
}

func (h *hook) option() func(*dynamodb.Options) {
	run := middleware.InitializeMiddlewareFunc("ovrlrdTestHook",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if awsmiddleware.GetOperationName(ctx) == h.op && h.armed.CompareAndSwap(true, false) {
				h.then()
			}
			return next.HandleInitialize(ctx, in)
		})
	return func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(run, middleware.Before)
		})
	}
}

// A turn that starts the moment the turn before it ends gets the session
// and folders that one saved, never what was there before it, although it
// reads them beside its transaction.
func TestStartTurnSeesThePreviousTurnsSave(t *testing.T) {
	t.Parallel()
	base := storetest.New(t)
	ctx := context.Background()
	uid := uuid.NewString()
	c, _ := startTurn(t, base, uid, "", "first")
	h := &hook{op: "TransactWriteItems"}
	h.then = func() {
		if err := base.FinishTurn(ctx, ovrlrd.TurnFinish{UserID: uid, ConversationID: c.ID, Holder: "first", SessionID: "s1", Workspace: "v1"}); err != nil {
			t.Error(err)
		}
	}
	s := store.New(store.NewDB(storetest.AWSConfig(), storetest.Endpoint(), h.option()), store.Options{Table: storetest.TableName()})
	h.armed.Store(true)
	next, err := startTurn(t, s, uid, c.ID, "second")
	if err != nil {
		t.Fatal(err)
	}
	if next.Workspace != "v1" || next.ClaudeSessionID == nil || *next.ClaudeSessionID != "s1" {
		t.Fatalf("the next turn resumes %+v, not the save of the turn before", next)
	}
}

// A turn's start answers once its transaction has: the conversation's
// read beside it holds up only what needs the conversation, not the turn's
// first byte.
func TestStartTurnDoesNotWaitForTheConversationsRead(t *testing.T) {
	t.Parallel()
	stall, clock := storetest.NewStall("GetItem"), newStepClock()
	s := store.New(store.NewDB(storetest.AWSConfig(), storetest.Endpoint(), stall.Option()), store.Options{
		Table: storetest.TableName(), Now: clock.Now,
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	uid := uuid.NewString()
	c, err := startTurn(t, s, uid, "", "h0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.FinishTurn(ctx, ovrlrd.TurnFinish{UserID: uid, ConversationID: c.ID, Holder: "h0", Title: "Kept",
		Outcome: ovrlrd.TurnOutcome{Kind: ovrlrd.OutcomeComplete}}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute) // saved long enough ago for the one-transaction start
	stall.Armed.Store(true)
	type result struct {
		started ovrlrd.TurnStarted
		err     error
	}
	done := make(chan result, 1)
	go func() {
		started, err := s.StartTurn(ctx, ovrlrd.TurnStart{UserID: uid, ConversationID: c.ID, Holder: "h1", Lease: time.Minute,
			Message: ovrlrd.NewMessage{Role: ovrlrd.RoleUser, Content: "again"}})
		done <- result{started, err}
	}()
	select {
	case <-stall.Stalled:
	case <-ctx.Done():
		t.Fatal("the conversation was not read")
	}
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		close(stall.Release)
		t.Fatal("StartTurn waited for the conversation's read")
	}
	close(stall.Release)
	if r.err != nil {
		t.Fatal(r.err)
	}
	conv, err := r.started.Conversation(ctx)
	if err != nil || conv.ID != c.ID || conv.Title == nil || *conv.Title != "Kept" {
		t.Fatalf("the read gave %+v, %v", conv, err)
	}
}

// A conversation saved longer ago than the clocks of two instances may
// differ starts its next turn in one transaction; one saved just before
// takes a second, which proves the state it resumes is the current one.
func TestOnlyARecentSaveCostsASecondTransaction(t *testing.T) {
	t.Parallel()
	clock := newStepClock()
	calls := &storetest.CallCounter{}
	s := store.New(store.NewDB(storetest.AWSConfig(), storetest.Endpoint(), calls.Option()), store.Options{
		Table: storetest.TableName(), Now: clock.Now,
	})
	ctx := context.Background()
	uid := uuid.NewString()
	c, err := startTurn(t, s, uid, "", "h0")
	if err != nil {
		t.Fatal(err)
	}
	holder := "h0"
	for i, k := range []struct {
		after time.Duration
		txs   int
	}{{2 * time.Second, 1}, {200 * time.Millisecond, 2}} {
		session := "s" + strconv.Itoa(i)
		if err := s.FinishTurn(ctx, ovrlrd.TurnFinish{UserID: uid, ConversationID: c.ID, Holder: holder, SessionID: session}); err != nil {
			t.Fatal(err)
		}
		clock.Advance(k.after)
		calls.Take()
		holder = "h" + strconv.Itoa(i+1)
		next, err := startTurn(t, s, uid, c.ID, holder)
		if err != nil {
			t.Fatal(err)
		}
		if got := calls.Take()["TransactWriteItems"]; got != k.txs {
			t.Errorf("a start %v after the save: %d transactions, want %d", k.after, got, k.txs)
		}
		if next.ClaudeSessionID == nil || *next.ClaudeSessionID != session {
			t.Errorf("a start %v after the save resumes %v, want %s", k.after, next.ClaudeSessionID, session)
		}
	}
}
