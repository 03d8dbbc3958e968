// Package sse writes the Server-Sent Events the iOS app reads while a turn
// streams.
//
// The app's parser is strict (see the client contract, §3.1): every event
// is `data: <compact JSON>\n\n`, LF only. It ignores `id:` and `retry:`
// lines, which clients that reattach to a turn use; the JSON object has `type` first and
// `type` must be one of the nine types below, otherwise the app shows the
// raw JSON as assistant text. The tenth, permission_request, is sent only
// by a turn whose client asked for live approvals (and replayed to those
// that reattach to it): the app of today never starts such a turn. The app also drops any network chunk that
// splits a UTF-8 sequence, so each event is handed to the underlying writer
// in a single Write call and flushed.
package sse

import (
	"slices"

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
	// PermissionRequest asks the user to allow a tool while the turn
	// waits: only for a turn whose client asked for live approvals.
	PermissionRequest = "permission_request"
)

// Event is one event for the app, written as wireEvent: in this order,
// `type` first, empty strings omitted, except that `content` is always
// written for chunk and segment_end and `denials` (`[]` if none) for
// permission_required. A Denial's tool_input must be as NormalizeToolInput
// returns it: Send refuses an event it cannot encode.
type Event struct {
	// ID, if set, is sent as the event's id line (not in its JSON).
	ID string
	// Data, if set, is the event's JSON as Encode made it (for the turn's
	// log): Send writes it as it is rather than encoding the event again.
	Data           []byte
	Type           string
	Content        string
	ConversationID string
	Message        string
	ToolName       string
	Title          string
	Denials        []ovrlrd.PermissionDenial
	// Approval is a permission_request's: its requestId, toolName,
	// toolInput and expiresAt.
	Approval *ovrlrd.Approval
}

// Terminal reports whether the app disconnects on receiving e: complete,
// no_response, permission_required and error are terminal.
func (e Event) Terminal() bool {
	return slices.Contains([]string{Complete, NoResponse, PermissionRequired, Error}, e.Type)
}

// KnownType reports whether t is one of the nine types the app decodes, or
// permission_request.
func KnownType(t string) bool {
	return slices.Contains([]string{Chunk, SegmentEnd, ToolStart, ToolEnd, Complete, NoResponse, PermissionRequired, Error, Ping, PermissionRequest}, t)
}
