// Package sse writes the Server-Sent Events the iOS app reads while a turn
// streams.
//
// The app's parser is strict (see the client contract, §3.1): every event
// is exactly the bytes `data: <compact JSON>\n\n`, LF only, with no
// `event:`, `id:` or `retry:` lines; the JSON object has `type` first and
// `type` must be one of the nine types below, otherwise the app shows the
// raw JSON as assistant text. The app also drops any network chunk that
// splits a UTF-8 sequence, so each event is handed to the underlying writer
// in a single Write call and flushed.
package sse

import (
	"encoding/json"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// The event types the app knows. Anything else must never be sent.
const (
	Chunk              = "chunk"
	SegmentEnd         = "segment_end"
	ToolStart          = "tool_start"
	ToolEnd            = "tool_end"
	Complete           = string(ovrlrd.OutcomeComplete)
	NoResponse         = string(ovrlrd.OutcomeNoResponse)
	PermissionRequired = string(ovrlrd.OutcomePermissionRequired)
	Error              = string(ovrlrd.OutcomeError)
	Ping               = "ping"
)

// Event is one event for the app. The field order is the JSON order, with
// `type` first.
//
// Empty strings are omitted, except that `content` is always written for
// chunk and segment_end (an empty string rather than a missing key), and
// `denials` is always written for permission_required (`[]` rather than a
// missing key or null). Every Denial's tool_input is written as a JSON
// object: `{}` when it is absent, null, not an object or not valid JSON.
// The struct tags document the wire names; the encoding itself is done by
// MarshalJSON, which Writer.Send uses too.
type Event struct {
	Type           string                    `json:"type"`
	Content        string                    `json:"content,omitempty"`
	ConversationID string                    `json:"conversationId,omitempty"`
	Message        string                    `json:"message,omitempty"`
	ToolName       string                    `json:"toolName,omitempty"`
	Title          string                    `json:"title,omitempty"`
	Denials        []ovrlrd.PermissionDenial `json:"denials,omitempty"`
}

// Terminal reports whether the app disconnects on receiving e: complete,
// no_response, permission_required and error are terminal.
func (e Event) Terminal() bool {
	switch e.Type {
	case Complete, NoResponse, PermissionRequired, Error:
		return true
	}
	return false
}

// MarshalJSON encodes e exactly as it goes on the wire (without the
// `data: ` prefix and the blank line). Note that json.Marshal, unlike
// calling this directly, then escapes <, > and & as \u003c etc. (the same
// JSON value).
func (e Event) MarshalJSON() ([]byte, error) {
	return e.appendJSON(make([]byte, 0, 64+len(e.Content)+len(e.Message))), nil
}

// KnownType reports whether t is one of the nine types the app decodes.
func KnownType(t string) bool {
	switch t {
	case Chunk, SegmentEnd, ToolStart, ToolEnd, Complete,
		NoResponse, PermissionRequired, Error, Ping:
		return true
	}
	return false
}

// NormalizeToolInput returns raw as compact JSON that the app can decode
// as a tool_input: a JSON object, `{}` when raw is empty, null, not an
// object or not valid JSON. Key order and number literals are kept as
// they are in raw; strings are re-encoded, so invalid UTF-8 and lone
// UTF-16 surrogate escapes (which the app's JSON decoder rejects) become
// U+FFFD. The result never aliases raw.
func NormalizeToolInput(raw json.RawMessage) json.RawMessage {
	return appendToolInput(nil, raw)
}
