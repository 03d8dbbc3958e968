package turn

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// EventLog keeps a turn's streamed events, so a client that lost its
// stream can reattach (the store).
type EventLog interface {
	AppendEvents(ctx context.Context, convID string, b ovrlrd.EventBatch) error
}

// Batching of the event log; variables so tests can change them.
var (
	// logEvery is the longest an event waits to be written; a batch is
	// written sooner once it holds logBatchEvents events or logBatchBytes.
	logEvery       = 250 * time.Millisecond
	logBatchEvents = 64
	logBatchBytes  = 256 << 10
	// logTimeout bounds one write: a hung call only delays the log.
	logTimeout = 3 * time.Second
)

// journal writes a turn's events to its log from its own goroutine, in
// batches, so the live stream never waits for the database. A batch that
// fails stays pending and is written with the next one. The turn's last
// events are not written here: close hands over what is pending, for the
// transaction that saves the turn.
type journal struct {
	log    EventLog
	logger *slog.Logger
	ctx    context.Context
	convID string
	turnID string

	mu      sync.Mutex
	pending [][]byte // events first, first+1, ... not yet written
	first   int
	size    int           // bytes pending
	since   time.Time     // when the oldest pending event came
	full    chan struct{} // a batch is full, or the first event came
	stop    chan struct{}
	done    chan struct{}
	close   func() ovrlrd.EventBatch
}

// newJournal starts the writer of turnID's log.
func newJournal(ctx context.Context, log EventLog, logger *slog.Logger, convID, turnID string) *journal {
	j := &journal{
		log: log, logger: logger, ctx: context.WithoutCancel(ctx), convID: convID, turnID: turnID, first: 1,
		full: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	j.close = sync.OnceValue(j.end)
	go j.loop()
	return j
}

// add queues the next event's data; it never waits for a write.
func (j *journal) add(data []byte) {
	j.mu.Lock()
	if len(j.pending) == 0 {
		j.since = time.Now()
	}
	j.pending = append(j.pending, data)
	j.size += len(data)
	kick := len(j.pending) == 1 || len(j.pending) >= logBatchEvents || j.size >= logBatchBytes
	j.mu.Unlock()
	if kick {
		select {
		case j.full <- struct{}{}:
		default:
		}
	}
}

// loop writes a batch when it is full or its oldest event has waited
// logEvery, until stop. After a failure it waits logEvery whatever is
// pending, so a table that refuses writes gets one try per interval, not
// one per event.
func (j *journal) loop() {
	defer close(j.done)
	wait := time.NewTimer(time.Hour)
	wait.Stop()
	var retryAt time.Time
	for {
		select {
		case <-j.stop:
			return
		case <-j.full:
		case <-wait.C:
		}
		j.mu.Lock()
		n, size, due := len(j.pending), j.size, j.since.Add(logEvery)
		j.mu.Unlock()
		if n >= logBatchEvents || size >= logBatchBytes {
			due = time.Now()
		}
		switch due = later(due, retryAt); {
		case n == 0:
			continue
		case time.Now().Before(due):
			wait.Reset(time.Until(due))
			continue
		}
		if !j.write(n) {
			retryAt = time.Now().Add(logEvery)
		}
		j.mu.Lock()
		if len(j.pending) > 0 {
			wait.Reset(time.Until(later(j.since.Add(logEvery), retryAt)))
		}
		j.mu.Unlock()
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// write writes the first n events pending, a batch at a time, and reports
// whether all of them were written. Events that come meanwhile wait for
// their own batch.
func (j *journal) write(n int) bool {
	for n > 0 {
		select {
		case <-j.stop:
			return false // what is left goes with the turn's save
		default:
		}
		j.mu.Lock()
		b := ovrlrd.EventBatch{TurnID: j.turnID, First: j.first}
		size := 0
		for _, data := range j.pending[:n] {
			if len(b.Events) == logBatchEvents || len(b.Events) > 0 && size+len(data) > logBatchBytes {
				break
			}
			b.Events, size = append(b.Events, data), size+len(data)
		}
		j.mu.Unlock()
		ctx, cancel := context.WithTimeout(j.ctx, logTimeout)
		err := j.log.AppendEvents(ctx, j.convID, b)
		cancel()
		if err != nil {
			j.logger.WarnContext(j.ctx, "event log append failed; retried with the next batch", "err", err, "events", len(b.Events))
			return false
		}
		j.mu.Lock()
		j.pending = j.pending[len(b.Events):]
		j.first += len(b.Events)
		j.size -= size
		n -= len(b.Events)
		if len(j.pending) > 0 {
			j.since = time.Now()
		}
		j.mu.Unlock()
	}
	return true
}

// end stops the writer, once its write in flight is over, and returns
// what it has not written.
func (j *journal) end() ovrlrd.EventBatch {
	close(j.stop)
	<-j.done
	j.mu.Lock()
	defer j.mu.Unlock()
	return ovrlrd.EventBatch{TurnID: j.turnID, First: j.first, Events: j.pending}
}
