package store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/store"
)

// logEvents are the events from..to of a turn, each telling its number.
func logEvents(from, to int) [][]byte {
	var out [][]byte
	for seq := from; seq <= to; seq++ {
		out = append(out, fmt.Appendf(nil, `{"type":"assistant_chunk","content":"%d"}`, seq))
	}
	return out
}

// bigEvent is an event of n bytes whose content does not repeat at any
// item boundary, so parts put back in the wrong order never compare equal.
func bigEvent(seed uint64, n int) []byte {
	const head, tail = `{"type":"assistant_chunk","content":"`, `"}`
	r := mrand.New(mrand.NewPCG(seed, seed))
	b := make([]byte, n)
	copy(b, head)
	for i := len(head); i < n-len(tail); i++ {
		b[i] = 'a' + byte(r.IntN(26))
	}
	copy(b[n-len(tail):], tail)
	return b
}

// wantLogged fails unless got is exactly the events first, first+1, ...
// of want, byte for byte.
func wantLogged(t *testing.T, what string, got []ovrlrd.LoggedEvent, first int, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events, want %d (%s)", what, len(got), len(want), seqs(got))
	}
	for i, e := range got {
		if e.Seq != first+i || !bytes.Equal(e.Data, want[i]) {
			t.Fatalf("%s: event %d is seq %d of %d bytes, want seq %d of %d bytes", what, i, e.Seq, len(e.Data), first+i, len(want[i]))
		}
	}
}

func seqs(events []ovrlrd.LoggedEvent) string {
	var b strings.Builder
	for _, e := range events {
		fmt.Fprintf(&b, " %d", e.Seq)
	}
	return "seqs" + b.String()
}

// readLog is Events, failing the test on an error.
func readLog(t *testing.T, s *store.Store, convID, turnID string, after int) []ovrlrd.LoggedEvent {
	t.Helper()
	got, err := s.Events(context.Background(), convID, turnID, after)
	if err != nil {
		t.Fatalf("events after %d: %v", after, err)
	}
	return got
}

func appendLog(t *testing.T, s *store.Store, convID string, b ovrlrd.EventBatch) {
	t.Helper()
	if err := s.AppendEvents(context.Background(), convID, b); err != nil {
		t.Fatalf("append %d..%d: %v", b.First, b.Last(), err)
	}
}

// eventItemKeys lists the sort keys of the event log items in convID's
// partition, in order, as stored.
func eventItemKeys(t *testing.T, convID string) []string {
	t.Helper()
	var items []struct {
		SK string `dynamo:"SK"`
	}
	err := storetest.DB().Table(storetest.TableName()).Get("PK", "CONV#"+convID).
		Range("SK", dynamo.BeginsWith, "EV#").Consistent(true).All(context.Background(), &items)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, it := range items {
		out = append(out, it.SK)
	}
	return out
}

// A turn's log gives back every event after any sequence number, in order,
// across and within batches; another turn's and another conversation's
// events never mix in; the conversation's deletion sweeps it.
func TestEventLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	u, err := s.CreateUser(ctx, "", "001234."+rand.Text())
	if err != nil {
		t.Fatal(err)
	}
	conv, _, err := storetest.NewConversation(ctx, s, u.ID, "first")
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := storetest.NewConversation(ctx, s, u.ID, "second")
	if err != nil {
		t.Fatal(err)
	}
	turn, next := rand.Text(), rand.Text()
	before := time.Now()
	for _, b := range [][2]int{{1, 3}, {4, 4}, {5, 9}} {
		appendLog(t, s, conv.ID, ovrlrd.EventBatch{TurnID: turn, First: b[0], Events: logEvents(b[0], b[1])})
	}
	// Written twice (a retried batch): the log is the same.
	appendLog(t, s, conv.ID, ovrlrd.EventBatch{TurnID: turn, First: 5, Events: logEvents(5, 9)})
	appendLog(t, s, conv.ID, ovrlrd.EventBatch{TurnID: next, First: 1, Events: logEvents(1, 2)})
	written := time.Now()
	for _, after := range []int{0, 3, 6, 9} {
		wantLogged(t, fmt.Sprintf("after %d", after), readLog(t, s, conv.ID, turn, after), after+1, logEvents(after+1, 9))
	}
	for _, c := range []struct{ conv, turn string }{{other.ID, turn}, {conv.ID, "ANOTHER"}, {conv.ID, turn + "#"}, {"not-a-conversation", turn}} {
		if got, err := s.Events(ctx, c.conv, c.turn, 0); err != nil || len(got) != 0 {
			t.Fatalf("%s %s: %d events, %v", c.conv, c.turn, len(got), err)
		}
	}
	for _, b := range []ovrlrd.EventBatch{
		{TurnID: "not#a-turn", First: 1, Events: logEvents(1, 1)},
		{TurnID: turn, First: 0, Events: logEvents(0, 0)}, // sequence numbers start at 1
		// Each event is a line of the item: one that is not would split.
		{TurnID: turn, First: 10, Events: [][]byte{[]byte("{\"type\":\n\"chunk\"}")}},
		{TurnID: turn, First: 10, Events: [][]byte{{}}},
	} {
		if err := s.AppendEvents(ctx, conv.ID, b); !ovrlrd.IsCode(err, ovrlrd.EINVALID) {
			t.Fatalf("batch %q from %d: %v", b.TurnID, b.First, err)
		}
	}
	if err := s.AppendEvents(ctx, "not-a-conversation", ovrlrd.EventBatch{TurnID: turn, First: 1, Events: logEvents(1, 1)}); !ovrlrd.IsCode(err, ovrlrd.EINVALID) {
		t.Fatalf("a malformed conversation id: %v", err)
	}
	// Each batch is one item, and expires a day (DefaultEventTTL) after its
	// write by the store's clock.
	var items []struct {
		TTL int64 `dynamo:"ttl"`
	}
	err = storetest.DB().Table(storetest.TableName()).Get("PK", "CONV#"+conv.ID).Range("SK", dynamo.BeginsWith, "EV#").
		Consistent(true).All(ctx, &items)
	if err != nil || len(items) != 4 {
		t.Fatalf("%d items, %v", len(items), err)
	}
	lo, hi := before.Add(store.DefaultEventTTL).Unix(), written.Add(store.DefaultEventTTL).Unix()
	for _, it := range items {
		if it.TTL < lo || it.TTL > hi {
			t.Fatalf("an item expires at %d, want %d..%d", it.TTL, lo, hi)
		}
	}
	if err := s.DeleteConversation(ctx, u.ID, conv.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Events(ctx, conv.ID, turn, 0); err != nil || len(got) != 0 {
		t.Fatalf("after the deletion: %d events, %v", len(got), err)
	}
}

// Options.EventTTL sets how long the items, a large event's parts too, are
// kept, counted from the store's clock.
func TestEventLogTTLComesFromTheOptions(t *testing.T) {
	t.Parallel()
	clock := newStepClock()
	s := store.New(storetest.DB(), store.Options{Table: storetest.TableName(), Now: clock.Now, EventTTL: time.Hour})
	conv, turn := uuid.NewString(), rand.Text()
	appendLog(t, s, conv, ovrlrd.EventBatch{TurnID: turn, First: 1, Events: [][]byte{[]byte("{}"), bigEvent(1, 400<<10)}})
	keys := eventItemKeys(t, conv)
	if len(keys) != 3 {
		t.Fatalf("items %q, want the small event's and the large one's two parts", keys)
	}
	for _, sk := range keys {
		var it struct {
			TTL int64 `dynamo:"ttl"`
		}
		rawGet(t, "CONV#"+conv, sk, &it)
		if want := clock.Now().Add(time.Hour).Unix(); it.TTL != want {
			t.Fatalf("%s expires at %d, want %d", sk, it.TTL, want)
		}
	}
}

// A batch whose write failed leaves a gap: a reader gets the events before
// it and nothing after, until the batch is written again; then all.
func TestEventLogStopsAtAGap(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	conv, turn := uuid.NewString(), rand.Text()
	appendLog(t, s, conv, ovrlrd.EventBatch{TurnID: turn, First: 1, Events: logEvents(1, 3)})
	appendLog(t, s, conv, ovrlrd.EventBatch{TurnID: turn, First: 7, Events: logEvents(7, 9)})
	wantLogged(t, "with 4..6 missing", readLog(t, s, conv, turn, 0), 1, logEvents(1, 3))
	wantLogged(t, "after 3, with 4..6 missing", readLog(t, s, conv, turn, 3), 4, nil)
	// A reader that has 6 already is not held up by a gap behind it.
	wantLogged(t, "after 6", readLog(t, s, conv, turn, 6), 7, logEvents(7, 9))

	appendLog(t, s, conv, ovrlrd.EventBatch{TurnID: turn, First: 4, Events: logEvents(4, 6)})
	wantLogged(t, "with the gap filled", readLog(t, s, conv, turn, 0), 1, logEvents(1, 9))
	wantLogged(t, "after 2, with the gap filled", readLog(t, s, conv, turn, 2), 3, logEvents(3, 9))
}

// A batch retried merged with the events after it overlaps the one that
// landed although its write reported a failure: each event still comes
// once, in order.
func TestEventLogOverlappingRetry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	conv, turn := uuid.NewString(), rand.Text()
	appendLog(t, s, conv, ovrlrd.EventBatch{TurnID: turn, First: 1, Events: logEvents(1, 64)})
	appendLog(t, s, conv, ovrlrd.EventBatch{TurnID: turn, First: 1, Events: logEvents(1, 100)})
	for _, after := range []int{0, 50, 64, 70, 99, 100} {
		wantLogged(t, fmt.Sprintf("after %d", after), readLog(t, s, conv, turn, after), after+1, logEvents(after+1, 100))
	}
	if last, err := s.LastEvent(ctx, conv, turn); err != nil || last != 100 {
		t.Fatalf("last event %d, %v", last, err)
	}
}

// An event too large for one item is cut into parts and read back whole,
// byte for byte; while one of its parts is missing it is not read at all,
// nor anything after it.
func TestEventLogLargeEvent(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	conv, turn := uuid.NewString(), rand.Text()
	want := [][]byte{logEvents(1, 1)[0], bigEvent(2, 700<<10), logEvents(3, 3)[0]}
	batch := ovrlrd.EventBatch{TurnID: turn, First: 1, Events: want}
	appendLog(t, s, conv, batch)
	for after := range 4 {
		wantLogged(t, fmt.Sprintf("after %d", after), readLog(t, s, conv, turn, after), after+1, want[after:])
	}

	// The parts of event 2 sort between events 1 and 3.
	keys := eventItemKeys(t, conv)
	prefix := "EV#" + turn + "#000000002#"
	if len(keys) != 5 || !strings.HasPrefix(keys[1], prefix) || !strings.HasPrefix(keys[3], prefix) {
		t.Fatalf("items %q", keys)
	}
	for _, missing := range keys[1:4] {
		if err := storetest.DB().Table(storetest.TableName()).Delete("PK", "CONV#"+conv).Range("SK", missing).
			Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		what := "without " + missing[len(prefix)-1:]
		wantLogged(t, what, readLog(t, s, conv, turn, 0), 1, want[:1])
		wantLogged(t, what+", after 1", readLog(t, s, conv, turn, 1), 2, nil)
		// The retry puts the part back.
		appendLog(t, s, conv, batch)
		wantLogged(t, what+" written again", readLog(t, s, conv, turn, 0), 1, want)
	}
}

// A reader asking past the largest sequence number a log can hold is owed
// nothing: no error. For some (9_999_999_998, 99_999_999_990) the range
// read's lower key would sort after its upper one. Such an id is not one
// the service sends, so it does not parse either.
func TestEventLogAfterTheLastPossibleEvent(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	conv, turn := uuid.NewString(), rand.Text()
	appendLog(t, s, conv, ovrlrd.EventBatch{TurnID: turn, First: 1, Events: logEvents(1, 2)})
	for _, after := range []int{999_999_999, 1_000_000_000, 9_999_999_998, 99_999_999_990, math.MaxInt} {
		if _, _, ok := ovrlrd.ParseEventID(ovrlrd.EventID(turn, after)); ok != (after <= ovrlrd.MaxEventSeq) {
			t.Fatalf("%d parses: %v", after, ok)
		}
		if got := readLog(t, s, conv, turn, after); len(got) != 0 {
			t.Fatalf("after %d: %s", after, seqs(got))
		}
	}
}

// LastEvent is the last event a reader could be owed: 0 with none, the
// last of the last batch, a large event once all its parts are written.
func TestLastEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	conv, turn, other := uuid.NewString(), rand.Text(), rand.Text()
	last := func(what, convID, turnID string, want int) {
		t.Helper()
		if got, err := s.LastEvent(ctx, convID, turnID); err != nil || got != want {
			t.Fatalf("%s: %d, %v; want %d", what, got, err, want)
		}
	}
	last("none logged", conv, turn, 0)
	appendLog(t, s, conv, ovrlrd.EventBatch{TurnID: turn, First: 1, Events: logEvents(1, 3)})
	appendLog(t, s, conv, ovrlrd.EventBatch{TurnID: turn, First: 4, Events: logEvents(4, 5)})
	last("two batches", conv, turn, 5)
	// Neither another turn's log nor another conversation's counts, even
	// one whose id begins with this turn's.
	last("another turn", conv, other, 0)
	last("a turn whose id starts like it", conv, turn[:len(turn)-1], 0)
	last("another conversation", uuid.NewString(), turn, 0)
	last("a malformed conversation id", "not-a-conversation", turn, 0)
	last("a malformed turn id", conv, turn+"#", 0)

	// The large event 6 counts once its last part is written.
	appendLog(t, s, conv, ovrlrd.EventBatch{TurnID: turn, First: 6, Events: [][]byte{bigEvent(6, 700<<10)}})
	last("a large last event", conv, turn, 6)
	keys := eventItemKeys(t, conv)
	if err := storetest.DB().Table(storetest.TableName()).Delete("PK", "CONV#"+conv).Range("SK", keys[len(keys)-1]).Run(ctx); err != nil {
		t.Fatal(err)
	}
	last("a large last event without its last part", conv, turn, 5)
}

// finishLogRig is a turn running in a new conversation, on a store whose
// transactions can be held, to look at the log while the save is in
// flight.
type finishLogRig struct {
	s      *store.Store
	stall  *storetest.Stall
	uid    string
	conv   string
	holder string
}

func newFinishLogRig(t *testing.T) finishLogRig {
	t.Helper()
	stall := storetest.NewStall("TransactWriteItems")
	s := store.New(store.NewDB(storetest.AWSConfig(), storetest.Endpoint(), stall.Option()), store.Options{Table: storetest.TableName()})
	r := finishLogRig{s: s, stall: stall, uid: uuid.NewString(), holder: rand.Text()}
	c, err := startTurn(t, s, r.uid, "", r.holder)
	if err != nil {
		t.Fatal(err)
	}
	r.conv = c.ID
	return r
}

func (r finishLogRig) finish(log ovrlrd.EventBatch) error {
	return r.s.FinishTurn(context.Background(), ovrlrd.TurnFinish{UserID: r.uid, ConversationID: r.conv, Holder: r.holder,
		Segments: []string{"answer"}, Outcome: ovrlrd.TurnOutcome{Kind: ovrlrd.OutcomeComplete}, Log: log})
}

// finishHeld is finish calling during while the save's transaction is
// held; once per rig.
func (r finishLogRig) finishHeld(t *testing.T, log ovrlrd.EventBatch, during func()) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r.stall.Armed.Store(true)
	done := make(chan error, 1)
	go func() { done <- r.finish(log) }()
	select {
	case <-r.stall.Stalled:
	case err := <-done:
		t.Fatalf("the turn finished without a transaction: %v", err)
	case <-ctx.Done():
		t.Fatal("the save's transaction never began")
	}
	func() {
		defer close(r.stall.Release) // whatever during does, the save goes on
		during()
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		t.Fatal("the save did not end")
		return nil
	}
}

const terminal = `{"type":"done"}`

// The turn's last events, its terminal event among them, are logged by the
// transaction that saves the turn: not before it, and with it.
func TestFinishTurnLogsTheTerminalEventWithTheSave(t *testing.T) {
	t.Parallel()
	r := newFinishLogRig(t)
	appendLog(t, r.s, r.conv, ovrlrd.EventBatch{TurnID: r.holder, First: 1, Events: logEvents(1, 3)})
	want := append(logEvents(1, 4), []byte(terminal))
	err := r.finishHeld(t, ovrlrd.EventBatch{TurnID: r.holder, First: 4, Events: want[3:]}, func() {
		wantLogged(t, "while the save is in flight", readLog(t, r.s, r.conv, r.holder, 0), 1, want[:3])
	})
	if err != nil {
		t.Fatal(err)
	}
	wantLogged(t, "after the save", readLog(t, r.s, r.conv, r.holder, 0), 1, want)
	if _, err := r.s.Run(context.Background(), r.conv); !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
		t.Fatalf("the lease is still held: %v", err)
	}
}

// A log that fell far behind is more than the save's transaction can
// take: what does not fit is written before it, and the terminal event
// still only with it.
func TestFinishTurnWritesALongLogFirst(t *testing.T) {
	t.Parallel()
	r := newFinishLogRig(t)
	want := [][]byte{bigEvent(1, 300<<10), bigEvent(2, 300<<10), bigEvent(3, 300<<10), []byte(terminal)}
	err := r.finishHeld(t, ovrlrd.EventBatch{TurnID: r.holder, First: 1, Events: want}, func() {
		got := readLog(t, r.s, r.conv, r.holder, 0)
		if len(got) == len(want) {
			t.Fatalf("the terminal event was logged before the save")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	wantLogged(t, "after the save", readLog(t, r.s, r.conv, r.holder, 0), 1, want)
}

// A turn that lost its lease saves nothing, and logs no event of its last
// ones: a reader never sees an end the conversation does not have.
func TestFinishTurnWithALostLeaseLogsNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newFinishLogRig(t)
	// Another run took the conversation over.
	if err := storetest.HoldRun(ctx, r.conv, rand.Text(), time.Now(), time.Minute); err != nil {
		t.Fatal(err)
	}
	log := ovrlrd.EventBatch{TurnID: r.holder, First: 1, Events: append(logEvents(1, 2), []byte(terminal))}
	if err := r.finish(log); !errors.Is(err, ovrlrd.ErrLeaseLost) {
		t.Fatalf("finish without the lease: %v", err)
	}
	if keys := eventItemKeys(t, r.conv); len(keys) != 0 {
		t.Fatalf("logged %q", keys)
	}

	// Nor does one whose log was too long for the transaction log its end.
	log = ovrlrd.EventBatch{TurnID: r.holder, First: 1, Events: [][]byte{bigEvent(1, 300<<10), bigEvent(2, 300<<10), bigEvent(3, 300<<10), []byte(terminal)}}
	if err := r.finish(log); !errors.Is(err, ovrlrd.ErrLeaseLost) {
		t.Fatalf("finish without the lease: %v", err)
	}
	if got := readLog(t, r.s, r.conv, r.holder, 0); len(got) == len(log.Events) {
		t.Fatalf("the end of a turn that lost its lease was logged")
	}
}

// StartTurn records the turn as the conversation's last, so a client that
// reattaches without an event id follows it: in a new conversation, in an
// existing one (whether its last save was long ago or just now), and not
// for a start that was refused.
func TestStartTurnSetsLastTurn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newStepClock()
	s := clockedStore(clock)
	uid := uuid.NewString()
	lastTurn := func(what, convID, want string) {
		t.Helper()
		c, err := s.Conversation(ctx, uid, convID)
		if err != nil || c.LastTurn != want {
			t.Fatalf("%s: last turn %q, %v; want %q", what, c.LastTurn, err, want)
		}
	}
	first, second, third := rand.Text(), rand.Text(), rand.Text()
	c, err := startTurn(t, s, uid, "", first)
	if err != nil {
		t.Fatal(err)
	}
	if c.LastTurn != first {
		t.Fatalf("the new conversation as started: last turn %q, want %q", c.LastTurn, first)
	}
	lastTurn("a new conversation", c.ID, first)
	if _, err := startTurn(t, s, uid, c.ID, rand.Text()); !ovrlrd.IsCode(err, ovrlrd.ECONFLICT) {
		t.Fatalf("a start while a turn runs: %v", err)
	}
	lastTurn("after a refused start", c.ID, first)

	running := first
	for _, k := range []struct {
		holder string
		after  time.Duration // since the save before
	}{{second, time.Minute}, {third, 0}} {
		if err := s.FinishTurn(ctx, ovrlrd.TurnFinish{UserID: uid, ConversationID: c.ID, Holder: running}); err != nil {
			t.Fatal(err)
		}
		clock.Advance(k.after)
		if _, err := startTurn(t, s, uid, c.ID, k.holder); err != nil {
			t.Fatal(err)
		}
		lastTurn(fmt.Sprintf("an existing conversation saved %v before", k.after), c.ID, k.holder)
		running = k.holder
	}
}

// The log never costs a turn its save: when the writes made before the
// save's transaction fail (a table throttling), the turn is saved without
// its last events, and a reader stops where the log does.
func TestFinishTurnSavesWhenItsLogCannotBeWritten(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fault := &storetest.Fault{Op: "PutItem"}
	s := store.New(store.NewDB(storetest.AWSConfig(), storetest.Endpoint(), fault.Option()), store.Options{Table: storetest.TableName()})
	uid, holder := uuid.NewString(), rand.Text()
	c, err := startTurn(t, s, uid, "", holder)
	if err != nil {
		t.Fatal(err)
	}
	fault.Armed.Store(true)
	log := ovrlrd.EventBatch{TurnID: holder, First: 1, Events: [][]byte{bigEvent(1, 300<<10), bigEvent(2, 300<<10), bigEvent(3, 300<<10), []byte(terminal)}}
	err = s.FinishTurn(ctx, ovrlrd.TurnFinish{UserID: uid, ConversationID: c.ID, Holder: holder,
		Segments: []string{"answer"}, Outcome: ovrlrd.TurnOutcome{Kind: ovrlrd.OutcomeComplete}, Log: log})
	if err != nil || fault.Fired.Load() == 0 {
		t.Fatalf("the save with its log failing: %v (faults %d)", err, fault.Fired.Load())
	}
	if msgs, _, err := s.Messages(ctx, c.ID, ovrlrd.Page{Limit: 10}); err != nil || len(msgs) != 2 || msgs[1].Content != "answer" {
		t.Fatalf("messages %+v, %v", msgs, err)
	}
	if got := readLog(t, s, c.ID, holder, 0); len(got) != 0 {
		t.Fatalf("%d events readable past the log's failed writes", len(got))
	}
}
