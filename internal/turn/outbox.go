package turn

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/sse"
)

// outbox hands events to the client from its own goroutine, so a slow or
// vanished client never stops the turn from checking its lease.
//
// While the client takes events, the queue is bounded: past it, the turn
// waits, and through its pipe so does the CLI, which bounds memory and
// slows the CLI to the reader's pace. Once the client counts as gone (a
// write failed, or one has not returned within sse.WriteTimeout: a phone
// suspended mid-stream stops reading without disconnecting), the rest is
// dropped and the turn runs on at full speed. Nothing saved is lost: the
// translator has recorded every event's text before it reaches the outbox.
//
// send, ping and close are called from the turn's goroutine only.
type outbox struct {
	sink    sse.Sink
	log     *slog.Logger
	ctx     context.Context
	timeout time.Duration // for one write, and for the flush in close
	// deadlined: every write of the sink ends by itself within timeout
	// (the sink says so with a Deadlined method, as sse.Writer does).
	deadlined bool
	q         chan sse.Event
	gone      chan struct{} // closed once the client counts as gone
	leave     func()        // closes gone, once
	done      chan struct{} // closed when the writer goroutine ends
	closeOnce sync.Once
	// journal, if set, logs every event but pings, each numbered: seq is
	// the last number given, turnID the turn's id in the events' ids.
	journal *journal
	turnID  string
	seq     int
}

// outboxSize bounds the events waiting for a slow client; past it the
// turn, and through the pipe the CLI, wait.
const outboxSize = 128

// pingEvent is the heartbeat the app ignores: it keeps a stream open
// through long silent tool runs.
var pingEvent = sse.Event{Type: sse.Ping}

// newOutbox starts the writer of sink; a nil sink (a turn nobody streams)
// takes nothing. Sends give up when ctx ends.
func newOutbox(ctx context.Context, sink sse.Sink, log *slog.Logger, timeout time.Duration) *outbox {
	o := &outbox{
		sink: sink, log: log, ctx: ctx, timeout: timeout,
		q: make(chan sse.Event, outboxSize), gone: make(chan struct{}), done: make(chan struct{}),
	}
	o.leave = sync.OnceFunc(func() { close(o.gone) })
	if sink == nil {
		o.leave()
		close(o.done)
		return o
	}
	if d, ok := sink.(interface{ Deadlined() bool }); ok {
		o.deadlined = d.Deadlined()
	}
	go o.loop()
	return o
}

// loop writes what is queued until close. A write outliving timeout makes
// the client gone at once, so the turn stops waiting on it; the write
// itself goes on until whatever blocks it gives way (see close).
func (o *outbox) loop() {
	defer close(o.done)
	stalled := time.AfterFunc(o.timeout, func() {
		o.log.InfoContext(o.ctx, "the client stopped reading; the turn goes on without it", "waited", o.timeout)
		o.leave()
	})
	stalled.Stop()
	for e := range o.q {
		if o.left() {
			continue
		}
		stalled.Reset(o.timeout)
		err := o.sink.Send(e)
		stalled.Stop()
		if err != nil {
			o.leave() // the client left; the turn goes on
		}
	}
}

func (o *outbox) left() bool {
	select {
	case <-o.gone:
		return true
	default:
		return false
	}
}

// send numbers and logs e (a ping is neither), then delivers it.
func (o *outbox) send(e sse.Event) {
	if o.journal != nil && e.Type != sse.Ping {
		var data []byte
		if e, data = o.number(e, o.seq+1); data == nil {
			return // the sink refuses it too; no gap is left in the log
		}
		o.seq++
		o.journal.add(data)
	}
	o.deliver(e)
}

// number gives e the id of sequence number seq, and returns it with its
// logged form; nil data for an event that does not encode.
func (o *outbox) number(e sse.Event, seq int) (sse.Event, []byte) {
	e.ID = ovrlrd.EventID(o.turnID, seq)
	data, err := sse.Encode(e)
	if err != nil {
		o.log.ErrorContext(o.ctx, "event not logged", "err", err)
		return e, nil
	}
	e.Data = data // encoded once, for the log and the client
	return e, data
}

// seal stops the journal and returns what it has not written followed by
// final, the turn's last events, numbered: the batch for the transaction
// that saves the turn. It may be called again with other final events
// (the save's second try); deliver then sends the ones that were saved.
func (o *outbox) seal(final ...sse.Event) (ovrlrd.EventBatch, []sse.Event) {
	if o.journal == nil {
		return ovrlrd.EventBatch{}, final
	}
	b := o.journal.close()
	b.Events = b.Events[:len(b.Events):len(b.Events)] // appends never share
	numbered := make([]sse.Event, 0, len(final))
	for _, e := range final {
		if e, data := o.number(e, o.seq+1+len(numbered)); data != nil {
			b.Events = append(b.Events, data)
			numbered = append(numbered, e)
		}
	}
	return b, numbered
}

// deliver queues e for the client, waiting for room only while the client
// is there and the turn's context lasts; otherwise e is dropped.
func (o *outbox) deliver(e sse.Event) {
	if o.left() {
		return
	}
	select {
	case o.q <- e:
	case <-o.gone:
	case <-o.ctx.Done():
	}
}

// close gives the writer timeout to hand the client what is queued, then
// drops the rest. It returns before a stuck write ends only when nobody
// can use the sink after the handler returns anyway:
//
//   - A deadlined sink (net/http's ResponseWriter) must not be written
//     after the handler returned, so close waits for the writer: its write
//     deadline ends a stuck write within timeout, with an error.
//   - Lambda's streaming writer (lambdaurl) has no deadline: its Write
//     blocks on an io.Pipe until the runtime reads the response body, and
//     the handler's return does not close the pipe (lambdaurl's deferred
//     Write(nil) queues behind the stuck write, so its Close never runs).
//     The write ends when the pipe's reader takes the bytes or is closed:
//     the client reads again; or the runtime's post of the body to the
//     Runtime API fails and the runtime closes the body; or, behind the
//     local gateway, the write to the client's connection fails and the
//     gateway drains the body. Failing those, the invocation's timeout
//     ends the whole environment. Then the writer drops the rest and ends.
//     The turn is saved and its lease released long before.
func (o *outbox) close() {
	if o.journal != nil {
		o.journal.close()
	}
	o.closeOnce.Do(func() { close(o.q) })
	select {
	case <-o.done:
		return
	case <-o.gone:
	case <-time.After(o.timeout):
	case <-o.ctx.Done():
	}
	o.leave()
	if o.deadlined {
		<-o.done
	}
}
