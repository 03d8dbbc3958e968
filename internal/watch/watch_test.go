package watch_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ovrlrd/cloud/internal/devkit/ssetest"
	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/sse"
	"github.com/ovrlrd/cloud/internal/store"
	"github.com/ovrlrd/cloud/internal/watch"
)

// The watch's timings, shortened for the whole package so that following
// takes milliseconds: the log is polled every 10ms, the lease checked every
// 40ms, a quiet stream pinged every 50ms, and a watch ends a second before
// its context's deadline.
const (
	pollEvery  = 10 * time.Millisecond
	checkEvery = 40 * time.Millisecond
	pingEvery  = 50 * time.Millisecond
	endMargin  = time.Second
)

func TestMain(m *testing.M) {
	watch.SetTimings(pollEvery, checkEvery, pingEvery, endMargin)
	storetest.Main(m)
}

// hangGuard bounds every wait: past it, the watch hangs.
const hangGuard = 10 * time.Second

// countingStore is the real store, counting the watcher's reads and
// failing the next failEvents reads of the log.
type countingStore struct {
	*store.Store
	events     atomic.Int32
	runs       atomic.Int32
	failEvents atomic.Int32
	failed     chan struct{} // gets one value per failed read
	read       chan struct{} // gets one value per read of the log, if there is room
	hangRuns   atomic.Bool   // reads of the lease hang until their context ends
}

func (c *countingStore) Events(ctx context.Context, convID, turnID string, after int) ([]ovrlrd.LoggedEvent, error) {
	c.events.Add(1)
	select {
	case c.read <- struct{}{}:
	default:
	}
	if c.failEvents.Add(-1) >= 0 {
		select {
		case c.failed <- struct{}{}:
		default:
		}
		return nil, ovrlrd.Errorf(ovrlrd.EUNAVAILABLE, "injected read failure")
	}
	c.failEvents.Store(0)
	return c.Store.Events(ctx, convID, turnID, after)
}

func (c *countingStore) Run(ctx context.Context, convID string) (ovrlrd.Run, error) {
	c.runs.Add(1)
	if c.hangRuns.Load() {
		<-ctx.Done()
		return ovrlrd.Run{}, ovrlrd.Wrap(ovrlrd.EUNAVAILABLE, "injected hang", ctx.Err())
	}
	return c.Store.Run(ctx, convID)
}

// rig is a user with a conversation whose turn runs (holds the lease).
type rig struct {
	st   *countingStore
	svc  *watch.Service
	uid  string
	conv string
	turn string
}

func newRig(t *testing.T) *rig {
	t.Helper()
	s := storetest.New(t)
	r := &rig{st: &countingStore{Store: s, failed: make(chan struct{}, 16), read: make(chan struct{}, 1)}, uid: uuid.NewString()}
	r.svc = watch.New(r.st, slog.New(slog.DiscardHandler))
	r.conv, r.turn = r.start(t, "")
	return r
}

// start starts a turn in convID ("" a new conversation) and returns the
// conversation and the turn, which holds its lease.
func (r *rig) start(t *testing.T, convID string) (string, string) {
	t.Helper()
	turn := rand.Text()
	started, err := r.st.StartTurn(context.Background(), ovrlrd.TurnStart{
		UserID: r.uid, ConversationID: convID, Holder: turn, Lease: time.Minute,
		Message: ovrlrd.NewMessage{Role: ovrlrd.RoleUser, Content: "hi"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return started.ConversationID, turn
}

// release ends turn's lease, as its save does.
func (r *rig) release(t *testing.T, convID, turn string) {
	t.Helper()
	if err := r.st.ReleaseRun(context.Background(), convID, turn); err != nil {
		t.Fatal(err)
	}
}

// logged are events from..to of a turn: chunks telling their number, the
// last one complete if terminal.
func logged(from, to int, terminal bool) [][]byte {
	var out [][]byte
	for seq := from; seq <= to; seq++ {
		e := sse.Event{Type: sse.Chunk, Content: fmt.Sprintf("event %d ✓\n", seq)}
		if seq%3 == 0 {
			e = sse.Event{Type: sse.ToolStart, ToolName: fmt.Sprintf("Tool%d", seq)}
		}
		if terminal && seq == to {
			e = sse.Event{Type: sse.Complete, ConversationID: "c", Title: "Done"}
		}
		data, err := sse.Encode(e)
		if err != nil {
			panic(err)
		}
		out = append(out, data)
	}
	return out
}

// appendLog logs events first.. of turn in convID.
func (r *rig) appendLog(t *testing.T, convID, turn string, first int, events [][]byte) {
	t.Helper()
	if err := r.st.AppendEvents(context.Background(), convID, ovrlrd.EventBatch{TurnID: turn, First: first, Events: events}); err != nil {
		t.Fatal(err)
	}
}

// follow follows to its end into a buffer and returns what the client
// got, and whether the stream was opened.
func (r *rig) follow(t *testing.T, ctx context.Context, convID, lastEventID string) (evs []ssetest.Event, opened bool, err error) {
	t.Helper()
	var buf bytes.Buffer
	err = r.svc.Follow(ctx, r.uid, convID, lastEventID, func() *sse.Writer {
		opened = true
		w := sse.NewWriter(&buf)
		w.Retry(1500 * time.Millisecond)
		return w
	})
	if opened && !bytes.HasPrefix(buf.Bytes(), []byte("retry: 1500\n")) {
		t.Errorf("the stream begins %.40q, not with its retry line", buf.Bytes())
	}
	evs, derr := ssetest.Decode(buf.Bytes())
	if derr != nil {
		t.Fatalf("the app cannot decode the stream: %v", derr)
	}
	return evs, opened, err
}

// wantEvents fails unless evs, pings aside, are events first.. of turn
// with data want, each with its id; it returns the pings.
func wantEvents(t *testing.T, evs []ssetest.Event, turn string, first int, want [][]byte) (pings int) {
	t.Helper()
	seq := first
	for _, e := range evs {
		if e.Type == sse.Ping {
			if e.ID != "" {
				t.Fatalf("a ping with id %q", e.ID)
			}
			pings++
			continue
		}
		if i := seq - first; i >= len(want) || e.Data != string(want[i]) || e.ID != ovrlrd.EventID(turn, seq) {
			t.Fatalf("event %d: %s with id %q; want %d events from %d of %s", seq, e.Data, e.ID, len(want), first, turn)
		}
		seq++
	}
	if seq-first != len(want) {
		t.Fatalf("%d events from %d, want %d", seq-first, first, len(want))
	}
	return pings
}

// live is a watch in progress, read as the app reads it, event by event.
type live struct {
	events chan ssetest.Event
	done   chan struct{} // closed once Follow returned
	err    error         // what it returned
	at     time.Time     // when it returned
	closed chan struct{} // closed once the stream ended
	pr     *io.PipeReader
}

func (r *rig) followLive(t *testing.T, ctx context.Context, convID, lastEventID string) *live {
	t.Helper()
	pr, pw := io.Pipe()
	l := &live{events: make(chan ssetest.Event, 1024), done: make(chan struct{}), closed: make(chan struct{}), pr: pr}
	go func() {
		l.err = r.svc.Follow(ctx, r.uid, convID, lastEventID, func() *sse.Writer { return sse.NewWriter(pw) })
		l.at = time.Now()
		pw.Close()
		close(l.done)
	}()
	go func() {
		defer close(l.closed)
		rd := ssetest.NewReader(pr)
		for {
			data, err := rd.Next()
			if err != nil {
				if err != io.EOF && !errors.Is(err, io.ErrClosedPipe) {
					t.Errorf("the stream broke: %v", err)
				}
				return
			}
			e, err := ssetest.DecodeData(string(data))
			if err != nil {
				t.Errorf("the app cannot decode %s: %v", data, err)
				return
			}
			e.ID = rd.ID()
			l.events <- e
		}
	}()
	t.Cleanup(func() {
		pr.Close()
		select {
		case <-l.done:
		case <-time.After(hangGuard):
			t.Error("the watch did not end")
		}
		<-l.closed
	})
	return l
}

// next returns the next event that is not a ping.
func (l *live) next(t *testing.T) ssetest.Event {
	t.Helper()
	guard := time.NewTimer(hangGuard)
	defer guard.Stop()
	for {
		var e ssetest.Event
		select {
		case e = <-l.events:
		case <-l.closed:
			// The events read before the end come first.
			select {
			case e = <-l.events:
			default:
				t.Fatal("the stream ended")
			}
		case <-guard.C:
			t.Fatal("no event")
		}
		if e.Type != sse.Ping {
			return e
		}
		if e.ID != "" {
			t.Fatalf("a ping with id %q", e.ID)
		}
	}
}

// expect reads the events first.. of turn with data want.
func (l *live) expect(t *testing.T, turn string, first int, want [][]byte) {
	t.Helper()
	for i, data := range want {
		e := l.next(t)
		if e.Data != string(data) || e.ID != ovrlrd.EventID(turn, first+i) {
			t.Fatalf("got %s with id %q, want %s with id %q", e.Data, e.ID, data, ovrlrd.EventID(turn, first+i))
		}
	}
}

// end waits for Follow to return and the stream to end, and returns what
// came after the events read, pings aside.
func (l *live) end(t *testing.T) (rest []ssetest.Event) {
	t.Helper()
	select {
	case <-l.done:
		if l.err != nil {
			t.Fatalf("Follow = %v", l.err)
		}
	case <-time.After(hangGuard):
		t.Fatal("the watch did not end")
	}
	<-l.closed
	for len(l.events) > 0 {
		if e := <-l.events; e.Type != sse.Ping {
			rest = append(rest, e)
		}
	}
	return rest
}

// ended reports whether Follow has returned.
func (l *live) ended() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// A conversation that is missing, or another user's, is not found, with
// the same error either way; a last event id that is not one the service
// sends, or names a turn of another conversation, is invalid. The stream
// is never opened.
func TestFollowRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRig(t)
	r.appendLog(t, r.conv, r.turn, 1, logged(1, 3, false))
	other := &rig{st: r.st, svc: r.svc, uid: uuid.NewString()}
	otherConv, otherTurn := other.start(t, "")
	other.appendLog(t, otherConv, otherTurn, 1, logged(1, 2, true))
	other.release(t, otherConv, otherTurn)
	// The same user's other conversation, whose turn logged events.
	sameUserConv, sameUserTurn := r.start(t, "")
	r.appendLog(t, sameUserConv, sameUserTurn, 1, logged(1, 2, false))

	follow := func(convID, last string) error {
		t.Helper()
		_, opened, err := r.follow(t, ctx, convID, last)
		if opened {
			t.Fatalf("conversation %s, last id %q: the stream was opened (%v)", convID, last, err)
		}
		if err == nil {
			t.Fatalf("conversation %s, last id %q: no error", convID, last)
		}
		return err
	}

	missing := follow(uuid.NewString(), "")
	if !ovrlrd.IsCode(missing, ovrlrd.ENOTFOUND) {
		t.Fatalf("a missing conversation: %v", missing)
	}
	for _, c := range []struct{ what, conv, last string }{
		{"another user's conversation", otherConv, ""},
		{"another user's conversation, with its event id", otherConv, ovrlrd.EventID(otherTurn, 1)},
		{"a malformed conversation id", "not-a-conversation", ""},
		{"a missing conversation, with an event id", uuid.NewString(), ovrlrd.EventID(r.turn, 1)},
		{"a missing conversation, with a malformed event id", uuid.NewString(), "nonsense"},
	} {
		err := follow(c.conv, c.last)
		if !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) || err.Error() != missing.Error() || ovrlrd.ErrorMessage(err) != ovrlrd.ErrorMessage(missing) {
			t.Errorf("%s: %v; want the missing conversation's %v", c.what, err, missing)
		}
	}

	for _, last := range []string{
		"nonsense", r.turn, r.turn + ".", r.turn + ".x", r.turn + ".-1", r.turn + ".+1", r.turn + ".01", r.turn + ".1.2",
		r.turn + ". 1", r.turn + ".1 ", " " + r.turn + ".1", ".1", "A-B.1", "A#B.1", strings.Repeat("A", 65) + ".1",
		r.turn + ".1000000000", r.turn + ".99999999999999999999", r.turn + "\n.1", r.turn + ".1\n",
	} {
		if err := follow(r.conv, last); !ovrlrd.IsCode(err, ovrlrd.EINVALID) {
			t.Errorf("last id %q: %v, want EINVALID", last, err)
		}
	}
	for _, c := range []struct{ what, last string }{
		{"another user's turn", ovrlrd.EventID(otherTurn, 1)},
		{"another user's turn, all of it", ovrlrd.EventID(otherTurn, 2)},
		{"the user's turn of another conversation", ovrlrd.EventID(sameUserTurn, 1)},
		{"the user's running turn of another conversation, before its first event", ovrlrd.EventID(sameUserTurn, 0)},
		{"a turn that never was", ovrlrd.EventID(rand.Text(), 3)},
	} {
		err := follow(r.conv, c.last)
		if !ovrlrd.IsCode(err, ovrlrd.EINVALID) || !errors.Is(err, ovrlrd.ErrOtherTurn) {
			t.Errorf("%s: %v, want ErrOtherTurn", c.what, err)
		}
	}
}

// With no turn to replay (none ran, or the latest logged nothing) or when
// the client has every event of the turn it names, there is nothing to
// follow, and the stream is never opened.
func TestFollowNothingToFollow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRig(t)
	// A turn that ended with its terminal, then one that logged nothing.
	r.appendLog(t, r.conv, r.turn, 1, logged(1, 4, true))
	r.release(t, r.conv, r.turn)
	_, silent := r.start(t, r.conv)
	r.release(t, r.conv, silent)
	// A conversation whose turn logged events, but never its end.
	unended, unendedTurn := r.start(t, "")
	r.appendLog(t, unended, unendedTurn, 1, logged(1, 3, false))
	r.release(t, unended, unendedTurn)
	// A conversation from before turns were logged: no latest turn.
	old, _, err := storetest.NewConversation(ctx, r.st.Store, r.uid, "hello")
	if err != nil {
		t.Fatal(err)
	}
	if err := storetest.DB().Table(storetest.TableName()).Update("PK", "USER#"+r.uid).Range("SK", "CONV#"+old.ID).
		Remove("lastTurn").Run(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := r.st.Conversation(ctx, r.uid, old.ID); err != nil || c.LastTurn != "" {
		t.Fatalf("the old conversation's latest turn %q, %v", c.LastTurn, err)
	}

	for _, c := range []struct{ what, conv, last string }{
		{"no turn ever ran", old.ID, ""},
		{"the latest turn logged nothing", r.conv, ""},
		{"the latest turn, all of it", r.conv, ovrlrd.EventID(silent, 0)},
		{"a turn before the latest, all of it", r.conv, ovrlrd.EventID(r.turn, 4)},
		{"a turn with its terminal, past its end", r.conv, ovrlrd.EventID(r.turn, 9)},
		{"a turn without its terminal, all of it", unended, ovrlrd.EventID(unendedTurn, 3)},
	} {
		evs, opened, err := r.follow(t, ctx, c.conv, c.last)
		if !errors.Is(err, ovrlrd.ErrNothingToFollow) || opened || len(evs) != 0 {
			t.Errorf("%s: %v, opened %v, %d events; want ErrNothingToFollow", c.what, err, opened, len(evs))
		}
	}
}

// A finished turn is replayed after the last id the client has, from its
// start without one, each event with its id, to its terminal event; the
// stream then ends. A turn before the latest is replayed too.
func TestFollowReplaysAFinishedTurn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRig(t)
	events := logged(1, 5, true)
	r.appendLog(t, r.conv, r.turn, 1, events[:3])
	r.appendLog(t, r.conv, r.turn, 4, events[3:])
	r.release(t, r.conv, r.turn)

	for _, c := range []struct {
		last  string
		first int
	}{
		{"", 1}, {ovrlrd.EventID(r.turn, 0), 1}, {ovrlrd.EventID(r.turn, 2), 3}, {ovrlrd.EventID(r.turn, 3), 4}, {ovrlrd.EventID(r.turn, 4), 5},
	} {
		evs, opened, err := r.follow(t, ctx, r.conv, c.last)
		if err != nil || !opened {
			t.Fatalf("after %q: %v, opened %v", c.last, err, opened)
		}
		if wantEvents(t, evs, r.turn, c.first, events[c.first-1:]) != 0 {
			t.Errorf("after %q: pings in a replay", c.last)
		}
	}

	// A later turn began: the earlier one is still replayed by its ids,
	// the later one without an id.
	_, next := r.start(t, r.conv)
	nextEvents := logged(1, 2, true)
	r.appendLog(t, r.conv, next, 1, nextEvents)
	r.release(t, r.conv, next)
	evs, _, err := r.follow(t, ctx, r.conv, ovrlrd.EventID(r.turn, 1))
	if err != nil {
		t.Fatal(err)
	}
	wantEvents(t, evs, r.turn, 2, events[1:])
	evs, _, err = r.follow(t, ctx, r.conv, "")
	if err != nil {
		t.Fatal(err)
	}
	wantEvents(t, evs, next, 1, nextEvents)
}

// A running turn is followed: what it logged so far at once, then each
// batch it logs, to the terminal event its save writes with the lease's
// release; the stream ends there. Two watchers follow it side by side.
func TestFollowARunningTurn(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := newRig(t)
	if err := storetest.HoldRun(ctx, r.conv, r.turn, time.Now(), time.Minute); err != nil {
		t.Fatal(err)
	}
	events := logged(1, 7, true)
	r.appendLog(t, r.conv, r.turn, 1, events[:2])

	a := r.followLive(t, ctx, r.conv, "")
	a.expect(t, r.turn, 1, events[:2])
	b := r.followLive(t, ctx, r.conv, ovrlrd.EventID(r.turn, 1))
	b.expect(t, r.turn, 2, events[1:2])

	r.appendLog(t, r.conv, r.turn, 3, events[2:4])
	a.expect(t, r.turn, 3, events[2:4])
	b.expect(t, r.turn, 3, events[2:4])
	r.appendLog(t, r.conv, r.turn, 5, events[4:6])
	a.expect(t, r.turn, 5, events[4:6])
	if a.ended() || b.ended() {
		t.Fatal("a watch ended while the turn runs")
	}
	// The save: the terminal event, with the lease's release.
	r.appendLog(t, r.conv, r.turn, 7, events[6:])
	r.release(t, r.conv, r.turn)
	a.expect(t, r.turn, 7, events[6:])
	if rest := a.end(t); len(rest) != 0 {
		t.Fatalf("after the terminal event: %+v", rest)
	}
	b.expect(t, r.turn, 5, events[4:])
	if rest := b.end(t); len(rest) != 0 {
		t.Fatalf("after the terminal event: %+v", rest)
	}

	// Reattaching after the terminal event: nothing to follow.
	if _, _, err := r.follow(t, ctx, r.conv, ovrlrd.EventID(r.turn, 7)); !errors.Is(err, ovrlrd.ErrNothingToFollow) {
		t.Fatalf("after the end: %v", err)
	}
}

// A turn whose lease is gone (released, taken by the next turn, or
// expired) without its terminal event in the log ends the watch once the
// log has nothing more, without a terminal event.
func TestFollowEndsWhenTheLeaseIsGone(t *testing.T) {
	t.Parallel()
	for name, end := range map[string]func(t *testing.T, r *rig){
		"released": func(t *testing.T, r *rig) { r.release(t, r.conv, r.turn) },
		"taken over": func(t *testing.T, r *rig) {
			if err := storetest.HoldRun(context.Background(), r.conv, rand.Text(), time.Now(), time.Minute); err != nil {
				t.Fatal(err)
			}
		},
		"expired": func(t *testing.T, r *rig) {
			if err := storetest.HoldRun(context.Background(), r.conv, r.turn, time.Now().Add(-time.Minute), time.Second); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t)
			events := logged(1, 4, false)
			r.appendLog(t, r.conv, r.turn, 1, events[:2])
			l := r.followLive(t, context.Background(), r.conv, "")
			l.expect(t, r.turn, 1, events[:2])
			// The last events written, then the lease gone: they still
			// reach the watcher.
			r.appendLog(t, r.conv, r.turn, 3, events[2:])
			end(t, r)
			l.expect(t, r.turn, 3, events[2:])
			if rest := l.end(t); len(rest) != 0 {
				t.Fatalf("after the last event: %+v", rest)
			}
		})
	}
}

// A watch that has not seen the end of its turn ends by itself before its
// context's deadline, keeping endMargin, for the client to reconnect with
// its last id; it does not end sooner.
func TestFollowEndsBeforeTheDeadline(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	events := logged(1, 2, false)
	r.appendLog(t, r.conv, r.turn, 1, events)
	ctx, cancel := context.WithTimeout(context.Background(), endMargin+500*time.Millisecond)
	defer cancel()
	deadline, _ := ctx.Deadline()
	evs, _, err := r.follow(t, ctx, r.conv, "")
	returned := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatalf("the watch lasted until its context ended (%v)", ctx.Err())
	}
	if left := deadline.Sub(returned); left > endMargin {
		t.Fatalf("the watch ended %v before its deadline, more than endMargin (%v) early", left, endMargin)
	}
	wantEvents(t, evs, r.turn, 1, events)

	// With the deadline closer than endMargin, the watch sends what it
	// has and ends at once.
	ctx, cancel = context.WithTimeout(context.Background(), endMargin/2)
	defer cancel()
	evs, _, err = r.follow(t, ctx, r.conv, ovrlrd.EventID(r.turn, 1))
	if err != nil || ctx.Err() != nil {
		t.Fatalf("%v, context %v", err, ctx.Err())
	}
	wantEvents(t, evs, r.turn, 2, events[1:])
}

// A quiet stream is pinged: at once when there is nothing to send first
// (the client sees it open), then every pingEvery. Pings carry no id.
func TestFollowPingsWhileQuiet(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	l := r.followLive(t, context.Background(), r.conv, "")
	for i := range 3 {
		select {
		case e := <-l.events:
			if e.Type != sse.Ping || e.ID != "" {
				t.Fatalf("event %d of a quiet stream: %s with id %q", i, e.Data, e.ID)
			}
		case <-time.After(hangGuard):
			t.Fatalf("no ping %d", i)
		}
	}
	events := logged(1, 1, true)
	r.appendLog(t, r.conv, r.turn, 1, events)
	l.expect(t, r.turn, 1, events)
	l.end(t)
}

// A client that leaves ends the watch at its next write, though the turn
// runs on.
func TestFollowEndsWhenTheClientLeaves(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	l := r.followLive(t, context.Background(), r.conv, "")
	select {
	case e := <-l.events:
		if e.Type != sse.Ping {
			t.Fatalf("first %s", e.Data)
		}
	case <-time.After(hangGuard):
		t.Fatal("the stream did not open")
	}
	l.pr.Close()
	select {
	case <-l.done:
		if l.err != nil {
			t.Fatal(l.err)
		}
	case <-time.After(hangGuard):
		t.Fatal("the watch goes on without its client")
	}
}

// A failed read of the log while following is tried again at the next
// poll: nothing is lost or repeated.
func TestFollowSurvivesAFailedRead(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	events := logged(1, 4, true)
	r.appendLog(t, r.conv, r.turn, 1, events[:1])
	l := r.followLive(t, context.Background(), r.conv, "")
	l.expect(t, r.turn, 1, events[:1])
	r.st.failEvents.Store(3)
	for range 3 {
		select {
		case <-r.st.failed:
		case <-time.After(hangGuard):
			t.Fatal("no read failed")
		}
	}
	r.appendLog(t, r.conv, r.turn, 2, events[1:3])
	l.expect(t, r.turn, 2, events[1:3])
	r.appendLog(t, r.conv, r.turn, 4, events[3:])
	r.release(t, r.conv, r.turn)
	l.expect(t, r.turn, 4, events[3:])
	if rest := l.end(t); len(rest) != 0 {
		t.Fatalf("after the terminal event: %+v", rest)
	}
}

// While events come, the watcher asks about the lease at most every
// checkEvery, not at every poll.
func TestFollowChecksTheLeaseSparingly(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	l := r.followLive(t, context.Background(), r.conv, "")
	start, runs := time.Now(), r.st.runs.Load()
	for range 20 {
		select {
		case <-r.st.read:
		case <-time.After(hangGuard):
			t.Fatal("the watcher stopped polling")
		}
	}
	elapsed := time.Since(start)
	checks := int(r.st.runs.Load() - runs)
	// One at the watch's start, then one per checkEvery at most.
	if most := int(elapsed/checkEvery) + 2; checks > most {
		t.Fatalf("%d lease checks in %v of 20 polls, want at most %d", checks, elapsed, most)
	}
	events := logged(1, 1, true)
	r.appendLog(t, r.conv, r.turn, 1, events)
	l.expect(t, r.turn, 1, events)
	l.end(t)
}

// A read of the table that hangs (here the lease's) ends with the watch,
// endMargin before its context's deadline, whatever readTimeout is.
func TestFollowEndsBeforeTheDeadlineThoughAReadHangs(t *testing.T) {
	// The reads' own timeout stays long: the watch's end bounds them.
	r := newRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), endMargin+2*time.Second)
	defer cancel()
	deadline, _ := ctx.Deadline()
	l := r.followLive(t, ctx, r.conv, "")
	select {
	case <-l.events: // the first ping: the watch began
	case <-l.done:
		t.Fatalf("the watch ended before it began: %v", l.err)
	case <-time.After(hangGuard):
		t.Fatal("the stream did not open")
	}
	r.st.hangRuns.Store(true)
	select {
	case <-l.done:
	case <-time.After(hangGuard):
		t.Fatal("the watch did not end")
	}
	if l.err != nil {
		t.Fatal(l.err)
	}
	if !l.at.Before(deadline) {
		t.Fatalf("the watch ended %v after its context's deadline, not endMargin (%v) before it", l.at.Sub(deadline), endMargin)
	}
}
