package turn

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/ssetest"
	"github.com/ovrlrd/cloud/internal/sse"
)

// hangGuard bounds every wait of these tests: past it, the outbox hangs.
const hangGuard = 10 * time.Second

// stuckSink is a client that stopped reading: every write blocks until
// release is closed, then succeeds.
type stuckSink struct {
	began   chan sse.Event // each write, as it begins
	release chan struct{}
}

func newStuckSink() *stuckSink {
	return &stuckSink{began: make(chan sse.Event, 4*outboxSize), release: make(chan struct{})}
}

func (s *stuckSink) Send(e sse.Event) error {
	s.began <- e
	<-s.release
	return nil
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func chunk(i int) sse.Event { return sse.Event{Type: sse.Chunk, Content: strings.Repeat("x", i+1)} }

// fill has the writer stuck on one event and the queue full behind it.
func fill(t *testing.T, o *outbox, sink *stuckSink) {
	t.Helper()
	o.send(chunk(0))
	waitFor(t, sink.began, "the first write")
	for i := 1; i <= outboxSize; i++ {
		o.send(chunk(i))
	}
}

func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	guard := time.NewTimer(hangGuard)
	defer guard.Stop()
	select {
	case v := <-ch:
		return v
	case <-guard.C:
		t.Fatalf("still waiting for %s after %v", what, hangGuard)
	}
	var zero T
	return zero
}

// returns runs f on its own goroutine; the channel closes when f returns.
func returns(f func()) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		f()
	}()
	return ch
}

// A full queue in front of a stuck client holds the turn only until the
// turn's context ends (its deadline, a disconnect in net/http).
func TestOutboxSendGivesUpWhenTheTurnEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sink := newStuckSink()
	o := newOutbox(ctx, sink, discard(), time.Hour) // the stall timer stays out of it
	t.Cleanup(func() { close(sink.release); o.close() })
	fill(t, o, sink)

	sent := returns(func() { o.send(chunk(outboxSize + 1)) })
	cancel()
	waitFor(t, sent, "send to give up once the turn's context ended")
}

// A write that has not returned within the timeout makes the client gone:
// the waiting send returns, later ones do not wait, nothing more is
// written, and the writer ends once its stuck write gives way.
func TestOutboxSendGivesUpOnAStalledClient(t *testing.T) {
	sink := newStuckSink()
	o := newOutbox(context.Background(), sink, discard(), 20*time.Millisecond)
	fill(t, o, sink)

	waitFor(t, returns(func() { o.send(chunk(outboxSize + 1)) }), "send to give up on the stalled client")
	waitFor(t, returns(func() {
		for i := range 10 * outboxSize {
			o.send(chunk(i))
			o.send(pingEvent)
		}
	}), "sends to a gone client to return at once")

	close(sink.release)
	o.close()
	waitFor(t, o.done, "the writer to end once its write was released")
	if n := len(sink.began); n != 0 {
		t.Fatalf("%d more writes to the gone client", n)
	}
}

// close never waits forever on a stuck write; the writer ends, writing
// nothing more, once the write gives way.
func TestOutboxCloseIsBounded(t *testing.T) {
	sink := newStuckSink()
	o := newOutbox(context.Background(), sink, discard(), 20*time.Millisecond)
	o.send(chunk(0))
	waitFor(t, sink.began, "the first write")
	o.send(sse.Event{Type: sse.Complete, ConversationID: "c"})

	waitFor(t, returns(o.close), "close to return while the write is stuck")
	select {
	case <-o.done:
		t.Fatal("the writer ended while its write was stuck")
	default:
	}
	close(sink.release)
	waitFor(t, o.done, "the writer to end once its write was released")
	if n := len(sink.began); n != 0 {
		t.Fatalf("%d more writes after the client was given up", n)
	}
}

// busyWriter is net/http's ResponseWriter, seen through as middleware is,
// counting the calls in progress.
type busyWriter struct {
	http.ResponseWriter
	busy atomic.Int32
}

func (b *busyWriter) Write(p []byte) (int, error) {
	b.busy.Add(1)
	defer b.busy.Add(-1)
	return b.ResponseWriter.Write(p)
}

func (b *busyWriter) FlushError() error {
	b.busy.Add(1)
	defer b.busy.Add(-1)
	return http.NewResponseController(b.ResponseWriter).Flush()
}

func (b *busyWriter) Unwrap() http.ResponseWriter { return b.ResponseWriter }

// Over net/http, a client that stops reading fails the write at its
// deadline, and close returns only after that: the handler never returns
// while its ResponseWriter is in use. The outbox gives up long before the
// write deadline here, so a close that did not wait would return mid-write.
func TestOutboxOverNetHTTPWaitsForTheWriteDeadline(t *testing.T) {
	defer func(d time.Duration) { sse.WriteTimeout = d }(sse.WriteTimeout)
	sse.WriteTimeout = 500 * time.Millisecond
	type result struct {
		deadlined bool
		busy      int32
	}
	closed := make(chan result, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bw := &busyWriter{ResponseWriter: w}
		sink := sse.NewWriter(bw)
		o := newOutbox(r.Context(), sink, discard(), 20*time.Millisecond)
		big := strings.Repeat("y", 64<<10)
		for range 4 * outboxSize {
			o.send(sse.Event{Type: sse.Chunk, Content: big})
		}
		o.close()
		closed <- result{sink.Deadlined(), bw.busy.Load()}
	}))
	t.Cleanup(srv.Close)
	conn := ssetest.DialStalled(t.Context(), t, srv.Listener.Addr().String())
	if _, err := conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	got := waitFor(t, closed, "close over a client that stopped reading")
	if !got.deadlined {
		t.Fatal("net/http's ResponseWriter took no write deadline")
	}
	if got.busy != 0 {
		t.Fatal("close returned while a write to the ResponseWriter was in progress")
	}
}
