package modelproxy

import (
	"bytes"
	"encoding/binary"
	"encoding/json"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// maxEvent bounds one SSE event or eventstream frame kept for parsing. The
// events that carry usage are small; a larger one is passed through to the
// client untouched but not parsed.
const maxEvent = 1 << 20

// maxJSON bounds a non-streaming body kept for parsing (a whole message of
// the largest output is a few MiB).
const maxJSON = 16 << 20

// sseParser splits text/event-stream into the data of each event.
type sseParser struct {
	line    []byte // the current line so far
	long    bool   // the current line outgrew maxEvent
	data    []byte // the current event's data lines, joined by \n
	dropped bool   // the current event outgrew maxEvent
}

func (p *sseParser) write(b []byte, emit func([]byte)) {
	for len(b) > 0 {
		part, rest, ended := bytes.Cut(b, []byte("\n"))
		if p.long || len(p.line)+len(part) > maxEvent {
			p.long, p.line = true, p.line[:0]
		} else {
			p.line = append(p.line, part...)
		}
		if ended {
			p.endLine(emit)
		}
		b = rest
	}
}

func (p *sseParser) endLine(emit func([]byte)) {
	line := bytes.TrimSuffix(p.line, []byte("\r"))
	long := p.long
	p.line, p.long = p.line[:0], false
	switch {
	case long:
		p.dropped = true
	case len(line) == 0:
		if len(p.data) > 0 && !p.dropped {
			emit(p.data)
		}
		p.data, p.dropped = p.data[:0], false
	case bytes.HasPrefix(line, []byte("data:")):
		v := bytes.TrimPrefix(line[len("data:"):], []byte(" "))
		if len(p.data)+len(v)+1 > maxEvent {
			p.dropped = true
			return
		}
		if len(p.data) > 0 {
			p.data = append(p.data, '\n')
		}
		p.data = append(p.data, v...)
	}
	// event:, id:, retry: and comments say nothing about usage.
}

func (p *sseParser) end(emit func([]byte)) {
	if len(p.line) > 0 || p.long {
		p.endLine(emit)
	}
	p.endLine(emit) // an unterminated last event still counts
}

// frameParser decodes application/vnd.amazon.eventstream frames, which
// arrive split across reads, and yields the Anthropic event inside each
// "chunk" event.
type frameParser struct {
	buf    []byte
	broken bool // a bad frame: the rest of the stream cannot be framed
}

func (p *frameParser) write(b []byte, emit func([]byte)) {
	if p.broken {
		return
	}
	p.buf = append(p.buf, b...)
	for len(p.buf) >= 4 {
		n := int(binary.BigEndian.Uint32(p.buf))
		if n < 16 || n > maxEvent {
			p.broken, p.buf = true, nil
			return
		}
		if len(p.buf) < n {
			return
		}
		msg, err := eventstream.NewDecoder().Decode(bytes.NewReader(p.buf[:n]), nil)
		p.buf = append(p.buf[:0], p.buf[n:]...)
		if err != nil {
			p.broken, p.buf = true, nil
			return
		}
		if msg.Headers.Get(":message-type") != eventstream.StringValue("event") ||
			msg.Headers.Get(":event-type") != eventstream.StringValue("chunk") {
			continue
		}
		var chunk struct {
			Bytes []byte `json:"bytes"` // base64 in the JSON
		}
		if json.Unmarshal(msg.Payload, &chunk) == nil && len(chunk.Bytes) > 0 {
			emit(chunk.Bytes)
		}
	}
}

func (p *frameParser) end(func([]byte)) { p.buf = nil }

// jsonParser keeps a non-streaming body and parses it as soon as it is
// complete, so the usage is recorded before the client has the last byte.
type jsonParser struct {
	buf  []byte
	done bool
}

func (p *jsonParser) write(b []byte, emit func([]byte)) {
	if p.done {
		return
	}
	if len(p.buf)+len(b) > maxJSON {
		p.done, p.buf = true, nil
		return
	}
	p.buf = append(p.buf, b...)
	// Only a chunk ending in '}' can complete the document; checking just
	// then keeps the validity scans rare.
	if t := bytes.TrimRight(p.buf, " \t\r\n"); len(t) > 0 && t[len(t)-1] == '}' && json.Valid(t) {
		p.done = true
		emit(t)
		p.buf = nil
	}
}

func (p *jsonParser) end(emit func([]byte)) {
	if !p.done && len(p.buf) > 0 {
		emit(p.buf)
	}
	p.done, p.buf = true, nil
}
