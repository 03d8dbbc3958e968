package modelproxy

import (
	"context"
	"encoding/json"
	"io"
)

// parser turns a response body, fed in arbitrary pieces, into event or body
// JSON documents.
type parser interface {
	write(b []byte, emit func([]byte))
	end(emit func([]byte))
}

// tap feeds a response body to a parser as the reverse proxy reads it, and
// folds what it yields into the response's counts in the session. It parses
// in the read path, before the bytes are written to the client, so usage and
// content are recorded by the time the client has seen them. Once the
// session has ended it passes nothing more on, even bytes already read: the
// Usage read after Session.Close then covers all the client got.
type tap struct {
	body  io.ReadCloser
	parse parser
	s     *Session
	c     *counts
	// whole: a non-streaming body, which has no deltas to count, so its
	// raw bytes are the content until it parses whole.
	whole bool
	ended bool
}

// event decodes one event or body and folds it into the counts.
func (t *tap) event(raw []byte) {
	var p payload
	ok := json.Unmarshal(raw, &p) == nil // if not, not ours to judge: the CLI gets the bytes unchanged
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	if ok {
		t.c.observe(&p)
		if t.whole {
			// Only a complete document parses: the response is over, and a
			// body without usage (count_tokens) costs nothing, as before.
			t.c.final = true
		}
	}
}

func (t *tap) Read(b []byte) (int, error) {
	n, err := t.body.Read(b)
	if n > 0 && !t.ended {
		t.parse.write(b[:n], t.event)
	}
	if t.whole && n > 0 {
		t.s.mu.Lock()
		if !t.c.final {
			t.c.content += int64(n)
		}
		t.s.mu.Unlock()
	}
	// Charged first, then checked: bytes that pass the check were counted
	// before the session ended, so before its final Usage.
	if t.s.ctx.Err() != nil {
		n, err = 0, context.Canceled // as a cancelled upstream read says it, which ReverseProxy does not log
	}
	if err != nil {
		t.end()
	}
	return n, err
}

func (t *tap) Close() error {
	t.end()
	return t.body.Close()
}

func (t *tap) end() {
	if !t.ended {
		t.ended = true
		t.parse.end(t.event)
	}
}
