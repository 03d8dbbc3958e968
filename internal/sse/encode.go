package sse

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// wireEvent is Event as the app reads it. Content's pointer and a non-nil
// Denials say "written even when empty": content for chunk and segment_end,
// denials (as []) for permission_required.
type wireEvent struct {
	Type           string                    `json:"type"`
	Content        *string                   `json:"content,omitempty"`
	ConversationID string                    `json:"conversationId,omitempty"`
	RequestID      string                    `json:"requestId,omitempty"` // permission_request only, so in its order
	Message        string                    `json:"message,omitempty"`
	ToolName       string                    `json:"toolName,omitempty"`
	Title          string                    `json:"title,omitempty"`
	Denials        []ovrlrd.PermissionDenial `json:"denials,omitzero"`
	ToolInput      json.RawMessage           `json:"toolInput,omitempty"`
	ExpiresAt      *ovrlrd.Timestamp         `json:"expiresAt,omitempty"`
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

// encode appends v's compact JSON to b, b itself on an error. Strings are
// escaped as the app needs: control characters (no raw newline in a
// frame), U+2028 and U+2029 escaped, invalid UTF-8 as \ufffd.
func (e *encoder) encode(b []byte, v any) ([]byte, error) {
	e.out = b
	err := e.enc.Encode(v)
	b, e.out = e.out, nil
	if err == nil {
		b = b[:len(b)-1] // the Encoder's newline
	}
	return b, err
}

// Encode returns e's data as Send writes it, for the turn's event log;
// Replay sends it again.
func Encode(e Event) ([]byte, error) {
	if !KnownType(e.Type) {
		return nil, fmt.Errorf("%w %q", ErrUnknownType, e.Type)
	}
	// Sized for the common event, so it encodes in one allocation.
	return e.appendJSON(make([]byte, 0, 64+len(e.Content)+len(e.Message)+len(e.ConversationID)+len(e.ToolName)))
}

// appendJSON appends e's compact JSON encoding to b.
func (e Event) appendJSON(b []byte) ([]byte, error) {
	enc := encoders.Get().(*encoder)
	defer encoders.Put(enc)
	enc.wire = wireEvent{Type: e.Type, ConversationID: e.ConversationID, Message: e.Message, ToolName: e.ToolName, Title: e.Title}
	if e.Content != "" || e.Type == Chunk || e.Type == SegmentEnd {
		enc.content = e.Content
		enc.wire.Content = &enc.content
	}
	if len(e.Denials) > 0 || e.Type == PermissionRequired {
		enc.wire.Denials = append([]ovrlrd.PermissionDenial{}, e.Denials...)
	}
	if a := e.Approval; a != nil {
		enc.wire.ConversationID, enc.wire.ToolName = a.ConversationID, a.ToolName
		enc.wire.RequestID, enc.wire.ToolInput, enc.wire.ExpiresAt = a.ID, NormalizeToolInput(a.ToolInput), &a.ExpiresAt
	}
	b, err := enc.encode(b, &enc.wire)
	enc.wire, enc.content = wireEvent{}, "" // the pool must not keep the event alive
	return b, err
}

// NormalizeToolInput returns raw as compact JSON that the app can decode
// as a tool_input: a JSON object, `{}` when raw is empty, null, not an
// object or not valid JSON. Key order and number literals are kept as
// they are in raw; strings are re-encoded, so invalid UTF-8 and lone
// UTF-16 surrogate escapes (which the app's JSON decoder rejects) become
// U+FFFD. The result never aliases raw.
func NormalizeToolInput(raw json.RawMessage) json.RawMessage {
	if !json.Valid(raw) || !bytes.HasPrefix(bytes.TrimLeft(raw, " \t\r\n"), []byte("{")) {
		return json.RawMessage("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	enc := encoders.Get().(*encoder)
	defer encoders.Put(enc)
	return enc.value(nil, dec)
}

// value appends the next value of dec, whose input is valid JSON, token by
// token: the decoder has already turned invalid UTF-8 and lone surrogates
// into U+FFFD, and the encoder writes strings as frames need them.
func (e *encoder) value(b []byte, dec *json.Decoder) []byte {
	tok, _ := dec.Token()
	open, ok := tok.(json.Delim)
	if !ok { // a string, json.Number, bool or nil: every one encodes
		b, _ = e.encode(b, tok)
		return b
	}
	b = append(b, byte(open))
	for n := 0; dec.More(); n++ {
		if n > 0 {
			b = append(b, ',')
		}
		if open == '{' {
			b = append(e.value(b, dec), ':') // the key
		}
		b = e.value(b, dec)
	}
	end, _ := dec.Token()
	return append(b, byte(end.(json.Delim)))
}
