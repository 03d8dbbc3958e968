package sse

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

var (
	// ErrUnknownType is returned by Send for a type the app does not
	// decode; nothing is written.
	ErrUnknownType = errors.New("sse: unknown event type")
	// ErrAfterTerminal is returned by Send and Ping once a terminal event
	// has been sent: the app has disconnected and would never see more.
	ErrAfterTerminal = errors.New("sse: event after a terminal event")
)

// WriteTimeout bounds each write to the client. A phone suspended
// mid-stream stops reading without closing its connection; past this, the
// client counts as gone. A variable so tests can shorten it.
var WriteTimeout = 30 * time.Second

// maxKeep is the largest buffer kept between events; a larger one (after a
// big event) is dropped so a long stream does not pin it.
const maxKeep = 64 << 10

// Writer frames events for the app. Each event is handed to the
// underlying writer in one Write call, then flushed if it is an
// http.ResponseWriter that can be, through http.ResponseController (which
// sees through middleware wrappers that have an Unwrap method).
//
// Each write to an http.ResponseWriter that takes a write deadline (net/http's
// does, Lambda's streaming writer does not) gets one WriteTimeout away, so
// a client that stops reading fails the write instead of holding it
// forever; see Deadlined.
//
// A Writer is safe for concurrent use (a heartbeat goroutine may Ping
// while the turn Sends). The first write error is sticky: later calls
// return it without writing, since a partly written event leaves the
// stream unusable.
type Writer struct {
	mu       sync.Mutex
	w        io.Writer
	flush    func() error
	deadline func(time.Time) error // nil when w takes no write deadline
	timeout  time.Duration
	buf      []byte
	retry    []byte // the retry line, until the first write
	err      error  // the first write's error, or ErrAfterTerminal
}

// NewWriter returns a Writer that writes to w.
func NewWriter(w io.Writer) *Writer {
	sw := &Writer{w: w, buf: make([]byte, 0, 512), timeout: WriteTimeout}
	if f, ok := w.(http.ResponseWriter); ok {
		rc := http.NewResponseController(f)
		// Asked with the zero time, which sets no deadline: every write
		// sets its own.
		if rc.SetWriteDeadline(time.Time{}) == nil {
			sw.deadline = rc.SetWriteDeadline
		}
		sw.flush = func() error {
			err := rc.Flush()
			if errors.Is(err, http.ErrNotSupported) {
				// Lambda's streaming writer sends every Write at once and
				// cannot flush; ask once, not once per event.
				sw.flush = nil
				return nil
			}
			return err
		}
	}
	return sw
}

// Deadlined reports whether every write ends by itself within
// WriteTimeout of its start, because the underlying writer takes a write
// deadline. Without one, a write to a client that stopped reading blocks
// until something else unblocks it.
func (w *Writer) Deadlined() bool { return w.deadline != nil }

// Retry makes the stream's first write begin with a retry line: how long
// an EventSource waits before it reconnects with the last id it received.
// The app ignores the line.
func (w *Writer) Retry(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.retry = fmt.Appendf(nil, "retry: %d\n", d.Milliseconds())
}

// Send writes e as `data: <compact JSON>\n\n`, after an `id: <ID>` line
// when e has an ID. It returns ErrUnknownType for a type outside the app's
// enum, ErrAfterTerminal after a terminal event, and an event that does not
// encode; in these cases nothing is written.
func (w *Writer) Send(e Event) error {
	if !KnownType(e.Type) {
		return fmt.Errorf("%w %q", ErrUnknownType, e.Type)
	}
	if !validID(e.ID) {
		return fmt.Errorf("sse: %s event: invalid id", e.Type)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if e.Data != nil {
		if bytes.ContainsAny(e.Data, "\r\n") {
			return fmt.Errorf("sse: %s event: a line break in its data", e.Type)
		}
		return w.end(append(w.start(e.ID), e.Data...), e.Terminal())
	}
	b, err := e.appendJSON(w.start(e.ID))
	if err != nil {
		return fmt.Errorf("sse: %s event: %w", e.Type, err)
	}
	return w.end(b, e.Terminal())
}

// Logged is an event of a turn's log, as Encode made its data, to send
// again under id. Its type is read from the data; data that is not one
// line of JSON with a type gets none, which Send refuses.
func Logged(id string, data []byte) Event {
	var head struct {
		Type string `json:"type"`
	}
	if bytes.ContainsAny(data, "\r\n") || json.Unmarshal(data, &head) != nil {
		head.Type = ""
	}
	return Event{ID: id, Type: head.Type, Data: data}
}

// validID reports whether id fits on its line: no line break, no NUL
// (which makes an EventSource ignore the id).
func validID(id string) bool { return !strings.ContainsAny(id, "\r\n\x00") }

// start begins a frame in w's buffer: the retry line of the stream's first
// write, the id line if any, and the data field's name.
func (w *Writer) start(id string) []byte {
	b := append(w.buf[:0], w.retry...)
	if id != "" {
		b = append(append(append(b, "id: "...), id...), '\n')
	}
	return append(b, "data: "...)
}

// end finishes the frame b and writes it; terminal says it ends the stream.
func (w *Writer) end(b []byte, terminal bool) error {
	b = append(b, '\n', '\n')
	w.retry = nil // in this write
	err := w.write(b)
	if cap(b) <= maxKeep {
		w.buf = b[:0] // a larger one leaves w.buf as it was
	}
	w.err = err
	if err == nil && terminal {
		w.err = ErrAfterTerminal // the app has gone: nothing more reaches it
	}
	return err
}

// write hands b to the underlying writer in one call and flushes. The
// deadline set here stays after the write, so the server's own last write
// of the response (after the handler returned) is bounded too.
func (w *Writer) write(b []byte) error {
	if w.deadline != nil {
		if err := w.deadline(time.Now().Add(w.timeout)); err != nil {
			return err
		}
	}
	switch n, err := w.w.Write(b); {
	case err != nil:
		return err
	case n != len(b):
		return io.ErrShortWrite
	case w.flush != nil:
		return w.flush()
	}
	return nil
}

// Sink receives a turn's events: a Writer, or whatever stands in for one.
type Sink interface {
	Send(Event) error
}
