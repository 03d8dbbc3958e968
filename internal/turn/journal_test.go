package turn

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ovrlrd/cloud/internal/devkit/ssetest"
	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/sse"
)

// These tests change the journal's package-level batching, so none of
// them runs in parallel: a parallel test starts only once they are over.

// appendCall is one AppendEvents the journal made, as it was answered.
type appendCall struct {
	b   ovrlrd.EventBatch
	err error
	at  time.Time // when it was called
}

// spyLog is the real store's event log, counting the journal's appends
// (each is sent on calls once answered), failing the next fail ones
// without writing, and, when hold is set, holding each until hold is
// closed (began gets the batch's First as it is held).
type spyLog struct {
	log   EventLog
	fail  atomic.Int32
	calls chan appendCall
	hold  chan struct{}
	began chan int
}

func newSpyLog(t *testing.T) *spyLog {
	return &spyLog{log: storetest.New(t), calls: make(chan appendCall, 1024), began: make(chan int, 16)}
}

func (s *spyLog) AppendEvents(ctx context.Context, convID string, b ovrlrd.EventBatch) error {
	at := time.Now()
	if s.hold != nil {
		s.began <- b.First
		<-s.hold
	}
	var err error
	if s.fail.Add(-1) >= 0 {
		err = errors.New("injected append failure")
	} else {
		s.fail.Store(0)
		err = s.log.AppendEvents(ctx, convID, b)
	}
	b.Events = slices.Clone(b.Events) // the batch as it was at the call
	s.calls <- appendCall{b: b, err: err, at: at}
	return err
}

// noMoreAppends fails if the journal made an append not yet looked at.
func (s *spyLog) noMoreAppends(t *testing.T) {
	t.Helper()
	select {
	case c := <-s.calls:
		t.Fatalf("an unexpected append of %d events from %d (%v)", len(c.b.Events), c.b.First, c.err)
	default:
	}
}

// setBatching sets the journal's batching for one test.
func setBatching(t *testing.T, every time.Duration, events, bytes int) {
	oe, on, ob := logEvery, logBatchEvents, logBatchBytes
	logEvery, logBatchEvents, logBatchBytes = every, events, bytes
	t.Cleanup(func() { logEvery, logBatchEvents, logBatchBytes = oe, on, ob })
}

// journalRig is a journal writing a new turn's log through a spyLog.
type journalRig struct {
	spy    *spyLog
	j      *journal
	convID string
	turnID string
	events [][]byte // every event added, in order
}

// newJournalRig starts a journal; setup runs on the spy before it starts.
func newJournalRig(t *testing.T, setup func(*spyLog)) *journalRig {
	t.Helper()
	r := &journalRig{spy: newSpyLog(t), convID: uuid.NewString(), turnID: rand.Text()}
	if setup != nil {
		setup(r.spy)
	}
	r.j = newJournal(context.Background(), r.spy, discard(), r.convID, r.turnID)
	t.Cleanup(func() {
		if r.spy.hold != nil {
			select {
			case <-r.spy.hold:
			default:
				close(r.spy.hold)
			}
		}
		r.j.close()
	})
	return r
}

// add adds n events, each naming its sequence number, padded to at least
// size bytes.
func (r *journalRig) add(n, size int) {
	for range n {
		e := sse.Event{Type: sse.Chunk, Content: fmt.Sprintf("event %d ✓ ", len(r.events)+1)}
		if pad := size - len(e.Content); pad > 0 {
			e.Content += strings.Repeat("x", pad)
		}
		data, err := sse.Encode(e)
		if err != nil {
			panic(err)
		}
		r.events = append(r.events, data)
		r.j.add(data)
	}
}

// next waits for the journal's next append.
func (r *journalRig) next(t *testing.T) appendCall {
	t.Helper()
	return waitFor(t, r.spy.calls, "the journal's append")
}

// wantBatch fails unless b is the events first..last added, of this turn.
func (r *journalRig) wantBatch(t *testing.T, what string, b ovrlrd.EventBatch, first, last int) {
	t.Helper()
	if b.TurnID != r.turnID || b.First != first || len(b.Events) != last-first+1 {
		t.Fatalf("%s: %d events from %d of turn %q, want %d..%d of %q", what, len(b.Events), b.First, b.TurnID, first, last, r.turnID)
	}
	for i, data := range b.Events {
		if !bytes.Equal(data, r.events[first-1+i]) {
			t.Fatalf("%s: event %d is %s, want %s", what, first+i, data, r.events[first-1+i])
		}
	}
}

// wantLog fails unless the turn's log in the store is exactly the events
// 1..last added, once each, in order.
func (r *journalRig) wantLog(t *testing.T, last int) {
	t.Helper()
	got, err := r.spy.log.(interface {
		Events(ctx context.Context, convID, turnID string, after int) ([]ovrlrd.LoggedEvent, error)
	}).Events(context.Background(), r.convID, r.turnID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != last {
		t.Fatalf("the log holds %d events, want %d", len(got), last)
	}
	for i, e := range got {
		if e.Seq != i+1 || !bytes.Equal(e.Data, r.events[i]) {
			t.Fatalf("logged event %d is seq %d: %s, want %s", i+1, e.Seq, e.Data, r.events[i])
		}
	}
}

// A full batch, logBatchEvents events, is written at once in one append,
// without waiting logEvery (an hour here), also one that filled while the
// one before was being written; what comes after it waits, and end hands
// it over.
func TestJournalWritesAFullBatchAtOnce(t *testing.T) {
	setBatching(t, time.Hour, 64, 256<<10)
	r := newJournalRig(t, func(s *spyLog) { s.hold = make(chan struct{}) })
	r.add(64, 0)
	if first := waitFor(t, r.spy.began, "the first append"); first != 1 {
		t.Fatalf("the first append begins at %d", first)
	}
	r.add(64, 0) // while the first batch is being written
	close(r.spy.hold)
	r.wantBatch(t, "the first batch", r.next(t).b, 1, 64)
	r.wantBatch(t, "the batch that filled meanwhile", r.next(t).b, 65, 128)
	r.wantLog(t, 128)

	r.add(3, 0)
	rest := r.j.close()
	r.spy.noMoreAppends(t)
	r.wantBatch(t, "what end returns", rest, 129, 131)
	r.wantLog(t, 128)
	if again := r.j.close(); again.First != 129 || len(again.Events) != 3 {
		t.Fatalf("close again: %d events from %d", len(again.Events), again.First)
	}
}

// So is a batch of logBatchBytes: its events are written at once, in
// appends of at most logBatchBytes each.
func TestJournalWritesAFullBatchOfBytesAtOnce(t *testing.T) {
	setBatching(t, time.Hour, 64, 1000)
	r := newJournalRig(t, nil)
	r.add(3, 400)
	var written int
	for written < 3 {
		c := r.next(t)
		size := 0
		for _, data := range c.b.Events {
			size += len(data)
		}
		if c.err != nil || size > logBatchBytes {
			t.Fatalf("an append of %d bytes: %v", size, c.err)
		}
		r.wantBatch(t, "a batch", c.b, written+1, written+len(c.b.Events))
		written += len(c.b.Events)
	}
	r.wantLog(t, 3)
	if rest := r.j.close(); rest.First != 4 || len(rest.Events) != 0 {
		t.Fatalf("end: %d events from %d", len(rest.Events), rest.First)
	}
	r.spy.noMoreAppends(t)
}

// Fewer events are written together in one append, logEvery after the
// first of them came, not sooner.
func TestJournalWritesAfterLogEvery(t *testing.T) {
	setBatching(t, 150*time.Millisecond, 64, 256<<10)
	r := newJournalRig(t, nil)
	start := time.Now()
	r.add(5, 0)
	c := r.next(t)
	r.wantBatch(t, "the first batch", c.b, 1, 5)
	if waited := c.at.Sub(start); waited < logEvery {
		t.Fatalf("written %v after the first event, want at least %v", waited, logEvery)
	}
	r.wantLog(t, 5)

	start = time.Now()
	r.add(2, 0)
	c = r.next(t)
	r.wantBatch(t, "the second batch", c.b, 6, 7)
	if waited := c.at.Sub(start); waited < logEvery {
		t.Fatalf("written %v after the first event, want at least %v", waited, logEvery)
	}
	r.wantLog(t, 7)
	if rest := r.j.close(); rest.First != 8 || len(rest.Events) != 0 {
		t.Fatalf("end: %d events from %d", len(rest.Events), rest.First)
	}
	r.spy.noMoreAppends(t)
}

// A failed append keeps its events pending; they are written with the
// next batch, logEvery later, in one append from the same First: nothing
// missing, nothing twice.
func TestJournalRetriesAFailedAppend(t *testing.T) {
	setBatching(t, 100*time.Millisecond, 64, 256<<10)
	r := newJournalRig(t, func(s *spyLog) { s.fail.Store(1) })
	r.add(3, 0)
	failed := r.next(t)
	if failed.err == nil {
		t.Fatal("the first append did not fail")
	}
	r.wantBatch(t, "the failed batch", failed.b, 1, 3)
	r.add(2, 0)
	retried := r.next(t)
	if retried.err != nil {
		t.Fatal(retried.err)
	}
	r.wantBatch(t, "the retry", retried.b, 1, 5)
	if gap := retried.at.Sub(failed.at); gap < logEvery {
		t.Fatalf("retried %v after the failure, want at least logEvery (%v)", gap, logEvery)
	}
	r.wantLog(t, 5)

	r.add(1, 0)
	r.wantBatch(t, "the batch after", r.next(t).b, 6, 6)
	r.wantLog(t, 6)
	if rest := r.j.close(); rest.First != 7 || len(rest.Events) != 0 {
		t.Fatalf("end: %d events from %d", len(rest.Events), rest.First)
	}
	r.spy.noMoreAppends(t)
}

// A failed full batch is retried, with what came after it, in batches of
// logBatchEvents: whatever the journal wrote, and what end returns, are
// every event once, in order.
func TestJournalRetriesAFailedFullBatch(t *testing.T) {
	setBatching(t, 100*time.Millisecond, 64, 256<<10)
	r := newJournalRig(t, func(s *spyLog) { s.fail.Store(1) })
	r.add(64, 0)
	if c := r.next(t); c.err == nil {
		t.Fatal("the first append did not fail")
	} else {
		r.wantBatch(t, "the failed batch", c.b, 1, 64)
	}
	r.add(64, 0)
	next := 1
	for next <= 64 { // at least the first 64 are written, the rest may wait
		c := r.next(t)
		if c.err != nil || len(c.b.Events) > logBatchEvents {
			t.Fatalf("an append of %d events: %v", len(c.b.Events), c.err)
		}
		r.wantBatch(t, "a batch", c.b, next, next+len(c.b.Events)-1)
		next += len(c.b.Events)
	}
	rest := r.j.close()
	for {
		select {
		case c := <-r.spy.calls:
			if c.err != nil {
				t.Fatal(c.err)
			}
			r.wantBatch(t, "a batch", c.b, next, next+len(c.b.Events)-1)
			next += len(c.b.Events)
			continue
		default:
		}
		break
	}
	r.wantBatch(t, "what end returns", rest, next, 128)
	r.wantLog(t, next-1)
}

// After a failed append the journal waits logEvery before it tries again,
// even with a full batch pending and more events coming: a table that
// fails (throttles) is not sent the whole backlog again at each event.
func TestJournalBacksOffAfterAFailure(t *testing.T) {
	setBatching(t, 150*time.Millisecond, 64, 256<<10)
	r := newJournalRig(t, func(s *spyLog) { s.fail.Store(1) })
	r.add(64, 0)
	failed := r.next(t)
	if failed.err == nil {
		t.Fatal("the first append did not fail")
	}
	r.add(10, 0) // a turn streams on
	retried := r.next(t)
	if gap := retried.at.Sub(failed.at); gap < logEvery {
		t.Fatalf("tried again %v after the failure (%d events from %d), want at least logEvery (%v)",
			gap, len(retried.b.Events), retried.b.First, logEvery)
	}
	r.wantBatch(t, "the retry", retried.b, 1, 64)
}

// end waits for the append in flight and returns exactly what it did not
// write, numbered from there; with every append failing, that is all.
func TestJournalEnd(t *testing.T) {
	t.Run("during an append", func(t *testing.T) {
		setBatching(t, time.Hour, 64, 256<<10)
		r := newJournalRig(t, func(s *spyLog) { s.hold = make(chan struct{}) })
		r.add(64, 0)
		if first := waitFor(t, r.spy.began, "the append to begin"); first != 1 {
			t.Fatalf("the append begins at %d", first)
		}
		r.add(2, 0)
		var rest ovrlrd.EventBatch
		ended := returns(func() { rest = r.j.close() })
		select {
		case <-ended:
			t.Fatal("end returned while an append was in flight")
		default:
		}
		close(r.spy.hold)
		waitFor(t, ended, "end")
		r.wantBatch(t, "the append", r.next(t).b, 1, 64)
		r.wantBatch(t, "what end returns", rest, 65, 66)
		r.spy.noMoreAppends(t)
		r.wantLog(t, 64)
	})
	t.Run("with every append failing", func(t *testing.T) {
		setBatching(t, 20*time.Millisecond, 64, 256<<10)
		r := newJournalRig(t, func(s *spyLog) { s.fail.Store(1 << 20) })
		r.add(3, 0)
		if c := r.next(t); c.err == nil {
			t.Fatal("the append did not fail")
		}
		r.add(1, 0)
		rest := r.j.close()
		for len(r.spy.calls) > 0 {
			if c := <-r.spy.calls; c.err == nil {
				t.Fatal("an append did not fail")
			}
		}
		r.wantBatch(t, "what end returns", rest, 1, 4)
		r.wantLog(t, 0)
	})
	t.Run("with nothing added", func(t *testing.T) {
		setBatching(t, time.Millisecond, 64, 256<<10)
		r := newJournalRig(t, nil)
		rest := r.j.close()
		r.wantBatch(t, "what end returns", rest, 1, 0)
		r.spy.noMoreAppends(t)
	})
}

// eventSink is a sse.Writer over a buffer: what the client reads.
type eventSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *eventSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *eventSink) events(t *testing.T) []ssetest.Event {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	evs, err := ssetest.Decode(s.buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// The outbox numbers every event but pings, from 1 with no gap (an event
// that does not encode takes no number), logs it, and sends it with its
// id; seal numbers the final events after them, the same on a second
// call, without changing the first call's batch. The log, once the sealed
// batch is written (as the turn's save does), is exactly what the client
// got, id for id.
func TestOutboxNumbersAndLogsEvents(t *testing.T) {
	setBatching(t, time.Hour, 64, 256<<10)
	ctx := context.Background()
	spy := newSpyLog(t)
	convID, turnID := uuid.NewString(), rand.Text()
	sink := &eventSink{}
	o := newOutbox(ctx, sse.NewWriter(sink), discard(), hangGuard)
	o.journal, o.turnID = newJournal(ctx, spy, discard(), convID, turnID), turnID
	t.Cleanup(o.close)

	sent := 0
	for i := range 70 {
		switch {
		case i%10 == 3:
			o.send(pingEvent)
		case i == 20:
			o.send(sse.Event{Type: "title_update", Title: "refused"})
		case i == 30:
			o.send(unencodable)
		}
		e := sse.Event{Type: sse.Chunk, Content: fmt.Sprintf("chunk %d", i)}
		if i%7 == 0 {
			e = sse.Event{Type: sse.ToolStart, ToolName: fmt.Sprintf("Tool%d", i)}
		}
		o.send(e)
		sent++
	}
	// The journal writes a full batch at once, and with it whatever else
	// is pending then; the rest is sealed.
	next := 1
	for c := waitFor(t, spy.calls, "the journal's full batch"); ; c = <-spy.calls {
		if c.err != nil || c.b.First != next || c.b.TurnID != turnID || len(c.b.Events) == 0 {
			t.Fatalf("the journal wrote %d events from %d of %q, want from %d: %v", len(c.b.Events), c.b.First, c.b.TurnID, next, c.err)
		}
		next += len(c.b.Events)
		if next > 64 {
			break
		}
	}

	complete := sse.Event{Type: sse.Complete, ConversationID: convID, Title: "Done"}
	b1, final1 := o.seal(sse.Event{Type: sse.SegmentEnd, ConversationID: convID, Content: "last"}, complete)
	for len(spy.calls) > 0 { // written between the full batch and the seal
		c := <-spy.calls
		if c.err != nil || c.b.First != next {
			t.Fatalf("the journal wrote %d events from %d, want from %d: %v", len(c.b.Events), c.b.First, next, c.err)
		}
		next += len(c.b.Events)
	}
	b2, final2 := o.seal(sse.Event{Type: sse.SegmentEnd, ConversationID: convID, Content: "last"}, unencodable,
		sse.Event{Type: sse.Error, Message: "lost"})
	spy.noMoreAppends(t)
	if n := sent - next + 1 + 2; b1.TurnID != turnID || b1.First != next || len(b1.Events) != n || b2.First != next || len(b2.Events) != n {
		t.Fatalf("sealed batches of %d events from %d, %d from %d; want %d from %d", len(b1.Events), b1.First, len(b2.Events), b2.First, n, next)
	}
	wantIDs := func(what string, evs []sse.Event, from int) {
		t.Helper()
		for i, e := range evs {
			if want := ovrlrd.EventID(turnID, from+i); e.ID != want {
				t.Fatalf("%s: event %d has id %q, want %q", what, i, e.ID, want)
			}
		}
	}
	wantIDs("the first seal", final1, sent+1)
	wantIDs("the second seal", final2, sent+1)
	if len(final1) != 2 || final1[1].Type != sse.Complete || len(final2) != 2 || final2[1].Type != sse.Error {
		t.Fatalf("final events %+v, then %+v", final1, final2)
	}
	for i := range b1.Events[:len(b1.Events)-2] {
		if !bytes.Equal(b1.Events[i], b2.Events[i]) {
			t.Fatalf("the seals differ at event %d", next+i)
		}
	}
	if last, _ := sse.Encode(final1[1]); !bytes.Equal(b1.Events[len(b1.Events)-1], last) {
		t.Fatalf("the second seal changed the first one's batch: it ends with %s", b1.Events[len(b1.Events)-1])
	}
	if !sse.Logged("", b2.Events[len(b2.Events)-1]).Terminal() || sse.Logged("", b2.Events[len(b2.Events)-2]).Terminal() {
		t.Fatal("the sealed batch does not end with its terminal event")
	}

	// The save's second try went through: its batch is logged, its final
	// events delivered.
	if err := spy.log.AppendEvents(ctx, convID, b2); err != nil {
		t.Fatal(err)
	}
	for _, e := range final2 {
		o.deliver(e)
	}
	o.close()
	waitFor(t, o.done, "the outbox's writer")

	got := sink.events(t)
	logged, err := storetest.New(t).Events(ctx, convID, turnID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(logged) != sent+2 {
		t.Fatalf("%d events logged, want %d", len(logged), sent+2)
	}
	seq, pings := 0, 0
	for _, e := range got {
		if e.Type == sse.Ping {
			pings++
			if e.ID != "" {
				t.Fatalf("a ping with id %q", e.ID)
			}
			continue
		}
		seq++
		if want := ovrlrd.EventID(turnID, seq); e.ID != want {
			t.Fatalf("event %d (%s) has id %q, want %q", seq, e.Data, e.ID, want)
		}
		if seq > len(logged) || logged[seq-1].Seq != seq || string(logged[seq-1].Data) != e.Data {
			t.Fatalf("event %d: the client got %s, the log has %+v", seq, e.Data, logged[min(seq, len(logged))-1])
		}
	}
	if seq != sent+2 || pings != 7 || got[len(got)-1].Type != sse.Error {
		t.Fatalf("the client got %d numbered events, %d pings, last %s; want %d, 7, error", seq, pings, got[len(got)-1].Type, sent+2)
	}
}

// unencodable passes Send's type check but does not encode.
var unencodable = sse.Event{Type: sse.PermissionRequired, ConversationID: "c",
	Denials: []ovrlrd.PermissionDenial{{ToolName: "Bash", ToolUseID: "t1", ToolInput: []byte(`{"a":`)}}}
