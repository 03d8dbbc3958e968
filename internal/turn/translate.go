package turn

// The translator turns the CLI's stream-json events into the events the
// app shows while a turn streams, and into the turn's outcome. It
// reproduces the old server's stream (client contract §3.2, §3.3, §7.1,
// §7.5) event for event:
//
//   - An assistant text block sends a tool_end for the pending tool, if
//     any, then a chunk with the block's text, which is appended to the
//     current segment. Text blocks and messages concatenate with no
//     separator. Empty text blocks are skipped entirely, as before.
//   - An assistant tool_use block closes the current segment if it holds
//     non-blank text (segment_end with the segment's full text, later
//     stored as its own message), then sends tool_start. A blank segment is
//     not closed: its whitespace stays at the head of the next one, exactly
//     as streamed. tool_end is lazy: only the last pending tool gets one,
//     just before the next text or at the end, so several tool_start events
//     can precede one tool_end. tool_use blocks without a name are skipped.
//   - thinking and any other block type, and any other line type, are
//     ignored.
//   - A user line with string content contributes the trimmed text of its
//     first <local-command-stdout>…</local-command-stdout> (slash-command
//     output), handled like an assistant text block when non-blank.
//   - system/init gives the session id.
//
// Sub-agent messages (ParentToolUseID set, from the Task tool) stream like
// the main agent's, as the old server did: their tool_start events are the
// only sign of progress during a long Task, and the client has no notion of
// agents to show them apart. The one exception is the slash-command rule:
// a sub-agent's user line is its prompt, never local command output.
//
// "Blank" and "trim" use JavaScript's notion of white space (the old
// server's String.prototype.trim): Unicode White_Space plus U+FEFF, but not
// U+0085.

import (
	"cmp"
	"slices"
	"strings"
	"unicode"

	"github.com/ovrlrd/cloud/internal/claude"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/sse"
)

const (
	noResponseMessage = "This command completed but produced no visible output."
	unknownError      = "Unknown error"
)

// translator follows one CLI run. It is not safe for concurrent use.
type translator struct {
	conversationID string
	// answered reports whether the user answered a tool call (by tool use
	// id) live, in the turn: a denial of theirs asks for nothing more (no
	// permission_required). nil: none was asked.
	answered    func(toolUseID string) bool
	sessionID   string
	cur         []byte // the current segment, as streamed
	curNonBlank bool
	segments    []string // the closed segments, as sent in segment_end
	pendingTool string   // the tool still owed a tool_end
}

// Feed appends to dst the events one CLI event sends to the app now, never
// a terminal one: the result line goes to Finish.
func (t *translator) Feed(dst []sse.Event, ev claude.Event) []sse.Event {
	switch ev.Type {
	case "system":
		if ev.Subtype == "init" && ev.SessionID != "" {
			t.sessionID = ev.SessionID
		}
	case "assistant":
		for _, b := range ev.Blocks {
			switch {
			case b.Type == "text" && b.Text != "":
				dst = t.text(dst, b.Text)
			case b.Type == "tool_use" && b.ToolName != "":
				dst = t.toolUse(dst, b.ToolName)
			}
		}
	case "user":
		if ev.ParentToolUseID == "" {
			if out := slashOutput(ev.UserText); out != "" {
				dst = t.text(dst, out)
			}
		}
	}
	return dst
}

func (t *translator) text(dst []sse.Event, s string) []sse.Event {
	dst = t.endTool(dst)
	t.cur = append(t.cur, s...)
	t.curNonBlank = t.curNonBlank || !isBlank(s)
	return append(dst, sse.Event{Type: sse.Chunk, Content: s})
}

func (t *translator) toolUse(dst []sse.Event, name string) []sse.Event {
	if t.curNonBlank {
		seg := string(t.cur)
		t.segments = append(t.segments, seg)
		t.cur, t.curNonBlank = t.cur[:0], false
		dst = append(dst, sse.Event{Type: sse.SegmentEnd, ConversationID: t.conversationID, Content: seg})
	}
	t.pendingTool = name
	return append(dst, sse.Event{Type: sse.ToolStart, ToolName: name})
}

func (t *translator) endTool(dst []sse.Event) []sse.Event {
	if t.pendingTool != "" {
		dst = append(dst, sse.Event{Type: sse.ToolEnd, ToolName: t.pendingTool})
		t.pendingTool = ""
	}
	return dst
}

// Outcome is how a run ended. The caller saves what it must first
// (Segments and SessionID), then sends Pending, then Terminal.
type Outcome struct {
	Kind ovrlrd.OutcomeKind
	// Segments are the assistant messages to store, in order: every
	// segment sent in a segment_end, then the trailing text if it is not
	// blank, each exactly as streamed and never blank, whatever the Kind.
	Segments []string
	// Denials are the result's permission denials, de-duplicated, each
	// tool_input normalized; set only for PermissionRequired.
	Denials []ovrlrd.PermissionDenial
	// SessionID is the session id from system/init, else the result's.
	SessionID string
	// Message is the error message for Error: the result's text, or
	// unknownError. It is "" when no result line arrived: the caller, which
	// knows why (timeout, crash, cancel), fills it in.
	Message string
	// Pending is the pending tool's tool_end, owed before the terminal event.
	Pending []sse.Event
}

// Finish ends the run: result is the CLI's result line, nil if none
// arrived (crash, timeout, stop). Call it once, after the last Feed.
//
// The outcome is, in order of precedence: Error if result is nil or is an
// error; PermissionRequired if the de-duplicated denials are not empty;
// Complete if any text was produced; NoResponse otherwise.
func (t *translator) Finish(result *claude.Result) Outcome {
	o := Outcome{SessionID: t.sessionID, Pending: t.endTool(nil), Segments: slices.Clip(t.segments)}
	if o.SessionID == "" && result != nil {
		o.SessionID = result.SessionID
	}
	if t.curNonBlank {
		o.Segments = append(o.Segments, string(t.cur))
	}
	switch {
	case result == nil:
		o.Kind = ovrlrd.OutcomeError
	case result.IsError:
		o.Kind, o.Message = ovrlrd.OutcomeError, result.Text
		if isBlank(o.Message) {
			o.Message = unknownError
		}
	default:
		denied := slices.DeleteFunc(slices.Clone(result.PermissionDenials), func(d ovrlrd.PermissionDenial) bool {
			return t.answered != nil && t.answered(d.ToolUseID)
		})
		if o.Denials = dedupe(denied); len(o.Denials) > 0 {
			o.Kind = ovrlrd.OutcomePermissionRequired
		} else if len(o.Segments) > 0 {
			o.Kind = ovrlrd.OutcomeComplete
		} else {
			o.Kind = ovrlrd.OutcomeNoResponse
		}
	}
	return o
}

// Terminal is the event that ends the stream: any Kind but the three
// others is an error, with unknownError if Message is empty.
func (o Outcome) Terminal(conversationID, title string) sse.Event {
	switch o.Kind {
	case ovrlrd.OutcomeComplete:
		return sse.Event{Type: sse.Complete, ConversationID: conversationID, Title: title}
	case ovrlrd.OutcomePermissionRequired:
		return sse.Event{Type: sse.PermissionRequired, ConversationID: conversationID, Denials: o.Denials}
	case ovrlrd.OutcomeNoResponse:
		return sse.Event{Type: sse.NoResponse, ConversationID: conversationID, Message: noResponseMessage}
	}
	return sse.Event{Type: sse.Error, Message: cmp.Or(o.Message, unknownError)}
}

// dedupe returns ds without repeats, nil if empty, leaving ds as it is.
// This is the one place a tool_input is normalized, so its key is the old
// server's JSON.stringify(tool_name + ":" + tool_input) for what the CLI
// emits: key order as sent (the same input with its keys in another order
// is kept twice), the first occurrence winning; absent, null or not an
// object counts as {}.
func dedupe(ds []ovrlrd.PermissionDenial) []ovrlrd.PermissionDenial {
	var out []ovrlrd.PermissionDenial
	seen := make(map[string]bool, len(ds))
	for _, d := range ds {
		d.ToolInput = sse.NormalizeToolInput(d.ToolInput)
		if key := d.ToolName + ":" + string(d.ToolInput); !seen[key] {
			seen[key] = true
			out = append(out, d)
		}
	}
	return out
}

// slashOutput returns the trimmed text of the first
// <local-command-stdout>…</local-command-stdout> in s ("" if none), like
// the old server's non-greedy regular expression.
func slashOutput(s string) string {
	_, rest, ok := strings.Cut(s, "<local-command-stdout>")
	out, _, closed := strings.Cut(rest, "</local-command-stdout>")
	if !ok || !closed {
		return ""
	}
	return strings.TrimFunc(out, isJSSpace)
}

// isJSSpace reports whether JavaScript's trim removes r.
func isJSSpace(r rune) bool {
	return r == '\uFEFF' || (r != '\u0085' && unicode.IsSpace(r))
}

func isBlank(s string) bool { return strings.TrimLeftFunc(s, isJSSpace) == "" }
