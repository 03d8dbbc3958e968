package sse

import (
	"bytes"
	"encoding/json"
	"io"
	"sync"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// wireEvent is Event as the app reads it. The pointers say "written even
// when empty": content for chunk and segment_end, denials (as []) for
// permission_required.
type wireEvent struct {
	Type           string                     `json:"type"`
	Content        *string                    `json:"content,omitempty"`
	ConversationID string                     `json:"conversationId,omitempty"`
	Message        string                     `json:"message,omitempty"`
	ToolName       string                     `json:"toolName,omitempty"`
	Title          string                     `json:"title,omitempty"`
	Denials        *[]ovrlrd.PermissionDenial `json:"denials,omitempty"`
}

// encoder is an encoding/json Encoder that appends to a caller's buffer,
// with the wire form it encodes. Pooled, so that an event allocates
// nothing beyond the buffer's growth (denials aside, which are rare).
type encoder struct {
	enc     *json.Encoder
	out     []byte
	wire    wireEvent
	content string
}

var encoders = sync.Pool{New: func() any {
	e := &encoder{}
	e.enc = json.NewEncoder(e)
	// The app reads the JSON as it is: <, > and & need no escaping.
	e.enc.SetEscapeHTML(false)
	return e
}}

func (e *encoder) Write(p []byte) (int, error) {
	e.out = append(e.out, p...)
	return len(p), nil
}

// encode appends v's compact JSON to b. Strings are escaped as the app
// needs: control characters (no raw newline in a frame), U+2028 and
// U+2029 escaped, invalid UTF-8 as \ufffd.
func (e *encoder) encode(b []byte, v any) []byte {
	e.out = b
	err := e.enc.Encode(v)
	b, e.out = e.out, nil
	if err != nil { // nothing was written: every value here encodes
		return b
	}
	return b[:len(b)-1] // the Encoder's newline
}

// appendJSON appends e's compact JSON encoding to b.
func (e Event) appendJSON(b []byte) []byte {
	enc := encoders.Get().(*encoder)
	defer encoders.Put(enc)
	enc.wire = wireEvent{Type: e.Type, ConversationID: e.ConversationID, Message: e.Message, ToolName: e.ToolName, Title: e.Title}
	if e.Content != "" || e.Type == Chunk || e.Type == SegmentEnd {
		enc.content = e.Content
		enc.wire.Content = &enc.content
	}
	if len(e.Denials) > 0 || e.Type == PermissionRequired {
		ds := make([]ovrlrd.PermissionDenial, len(e.Denials))
		for i, d := range e.Denials {
			d.ToolInput = NormalizeToolInput(d.ToolInput)
			ds[i] = d
		}
		enc.wire.Denials = &ds
	}
	b = enc.encode(b, &enc.wire)
	enc.wire, enc.content = wireEvent{}, "" // the pool must not keep the event alive
	return b
}

// appendToolInput appends raw, normalized as NormalizeToolInput describes.
func appendToolInput(b []byte, raw json.RawMessage) []byte {
	if !isObject(raw) || !json.Valid(raw) {
		return append(b, "{}"...)
	}
	enc := encoders.Get().(*encoder)
	defer encoders.Put(enc)
	// Re-encode token by token: keeps key order and number literals,
	// drops insignificant space, and re-escapes strings (the decoder has
	// already turned invalid UTF-8 and lone surrogates into U+FFFD).
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	type frame struct {
		object bool
		n      int // tokens written in this container (keys and values)
	}
	stack := make([]frame, 0, 8)
	start := len(b)
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil { // not reached for valid JSON; be safe anyway
			return append(b[:start], "{}"...)
		}
		if d, ok := tok.(json.Delim); len(stack) > 0 && (!ok || d == '{' || d == '[') {
			top := &stack[len(stack)-1]
			switch {
			case top.object && top.n%2 == 1:
				b = append(b, ':')
			case top.n > 0:
				b = append(b, ',')
			}
			top.n++
		}
		switch t := tok.(type) {
		case json.Delim:
			b = append(b, byte(t))
			switch t {
			case '{', '[':
				stack = append(stack, frame{object: t == '{'})
			default:
				stack = stack[:len(stack)-1]
			}
		default: // a string, json.Number, bool or nil
			b = enc.encode(b, t)
		}
	}
	return b
}

// isObject reports whether the first non-space byte of raw is '{'.
func isObject(raw []byte) bool {
	for _, c := range raw {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c == '{'
	}
	return false
}
