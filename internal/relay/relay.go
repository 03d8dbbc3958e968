// Package relay turns the Claude CLI's stream-json events into the events
// the iOS app shows while a turn streams, and into the turn's outcome.
//
// It reproduces the old server's stream (client contract §3.2, §3.3, §7.1,
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
// a sub-agent's user line is its prompt, never local command output, so it
// is not scanned for <local-command-stdout>.
//
// "Blank" and "trim" use JavaScript's notion of white space (the old
// server's String.prototype.trim): Unicode White_Space plus U+FEFF, but not
// U+0085.
package relay

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ovrlrd/cloud/internal/claude"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/sse"
)

// NoResponseMessage is the message of the no_response event.
const NoResponseMessage = "This command completed but produced no visible output."

// UnknownError is the error message when nothing better is known.
const UnknownError = "Unknown error"

// Translator follows one CLI run. It is not safe for concurrent use.
type Translator struct {
	conversationID string
	sessionID      string
	cur            []byte // the current segment, as streamed
	curNonBlank    bool
	segments       []string // the closed segments, as sent in segment_end
	pendingTool    string   // the tool still owed a tool_end
}

// New returns a Translator for a run of the given conversation.
func New(conversationID string) *Translator {
	return &Translator{conversationID: conversationID}
}

// Feed takes one CLI event and appends to dst the events to send to the
// app now, in order; it returns the extended slice. It never appends a
// terminal event (nor a ping). Result lines are ignored here: pass the
// result to Finish.
func (t *Translator) Feed(dst []sse.Event, ev claude.Event) []sse.Event {
	switch ev.Type {
	case "system":
		if ev.Subtype == "init" && ev.SessionID != "" {
			t.sessionID = ev.SessionID
		}
	case "assistant":
		for i := range ev.Blocks {
			b := &ev.Blocks[i]
			switch b.Type {
			case "text":
				if b.Text != "" {
					dst = t.text(dst, b.Text)
				}
			case "tool_use":
				if b.ToolName != "" {
					dst = t.toolUse(dst, b.ToolName)
				}
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

func (t *Translator) text(dst []sse.Event, s string) []sse.Event {
	if t.pendingTool != "" {
		dst = append(dst, sse.Event{Type: sse.ToolEnd, ToolName: t.pendingTool})
		t.pendingTool = ""
	}
	t.cur = append(t.cur, s...)
	if !t.curNonBlank && !isBlank(s) {
		t.curNonBlank = true
	}
	return append(dst, sse.Event{Type: sse.Chunk, Content: s})
}

func (t *Translator) toolUse(dst []sse.Event, name string) []sse.Event {
	if t.curNonBlank {
		seg := string(t.cur)
		t.segments = append(t.segments, seg)
		t.cur, t.curNonBlank = t.cur[:0], false
		dst = append(dst, sse.Event{Type: sse.SegmentEnd, ConversationID: t.conversationID, Content: seg})
	}
	t.pendingTool = name
	return append(dst, sse.Event{Type: sse.ToolStart, ToolName: name})
}

// Outcome is how a run ended. The caller saves what it must first
// (Segments for Complete and PermissionRequired, and SessionID), then
// sends Pending, then Terminal.
type Outcome struct {
	Kind ovrlrd.OutcomeKind
	// Segments are the assistant messages to store, in order: every
	// segment sent in a segment_end, then the trailing text if it is not
	// blank. Each is exactly the text streamed for it, and never blank.
	// They are set whatever the Kind; the contract stores them for
	// Complete and PermissionRequired.
	Segments []string
	// Denials are the result's permission denials, de-duplicated, each
	// tool_input a JSON object; set only for PermissionRequired.
	Denials []ovrlrd.PermissionDenial
	// SessionID is the session id from system/init, else the result's.
	SessionID string
	// Message is the error message for Error: the result's text, or
	// UnknownError. It is "" when no result line arrived: the caller, which
	// knows why (timeout, crash, cancel), fills it in.
	Message string
	// Result is the result line, for cost and usage; nil if none arrived.
	Result *claude.Result
	// Pending are the events to send before the terminal one (the
	// pending tool's tool_end).
	Pending []sse.Event
}

// Finish ends the run: result is the CLI's result line, nil if none
// arrived (crash, timeout, stop). Call it once, after the last Feed.
//
// The outcome is, in order of precedence: Error if result is nil or is an
// error; PermissionRequired if the de-duplicated denials are not empty;
// Complete if any text was produced (a closed segment or non-blank
// trailing text); NoResponse otherwise.
//
// Denials are de-duplicated by tool_name + ":" + tool_input, the first
// occurrence winning, as the old server did with JSON.stringify. The
// tool_input part is NormalizeToolInput's form: compact, key order as sent
// (so, as before, the same input with its keys in another order is kept
// twice), strings re-escaped. For inputs the CLI emits (which are
// JSON.stringify output already) this is exactly the old key; an absent,
// null or non-object tool_input counts as {}.
func (t *Translator) Finish(result *claude.Result) Outcome {
	o := Outcome{SessionID: t.sessionID, Result: result}
	if o.SessionID == "" && result != nil {
		o.SessionID = result.SessionID
	}
	if t.pendingTool != "" {
		o.Pending = []sse.Event{{Type: sse.ToolEnd, ToolName: t.pendingTool}}
		t.pendingTool = ""
	}
	o.Segments = slices.Clip(t.segments)
	if t.curNonBlank {
		o.Segments = append(o.Segments, string(t.cur))
	}
	switch {
	case result == nil:
		o.Kind = ovrlrd.OutcomeError
	case result.IsError:
		o.Kind, o.Message = ovrlrd.OutcomeError, result.Text
		if isBlank(o.Message) {
			o.Message = UnknownError
		}
	default:
		if o.Denials = dedupe(result.PermissionDenials); len(o.Denials) > 0 {
			o.Kind = ovrlrd.OutcomePermissionRequired
		} else if len(o.Segments) > 0 {
			o.Kind = ovrlrd.OutcomeComplete
		} else {
			o.Kind = ovrlrd.OutcomeNoResponse
		}
	}
	return o
}

// Terminal builds the terminal event: complete {conversationId, title if
// not empty}, permission_required {conversationId, denials}, no_response
// {conversationId, message}, or error {message} (UnknownError if Message
// is empty). Any other Kind gives an error event.
func (o Outcome) Terminal(conversationID, title string) sse.Event {
	switch o.Kind {
	case ovrlrd.OutcomeComplete:
		return sse.Event{Type: sse.Complete, ConversationID: conversationID, Title: title}
	case ovrlrd.OutcomePermissionRequired:
		return sse.Event{Type: sse.PermissionRequired, ConversationID: conversationID, Denials: o.Denials}
	case ovrlrd.OutcomeNoResponse:
		return sse.Event{Type: sse.NoResponse, ConversationID: conversationID, Message: NoResponseMessage}
	}
	msg := o.Message
	if msg == "" {
		msg = UnknownError
	}
	return sse.Event{Type: sse.Error, Message: msg}
}

// dedupe returns ds without repeats, tool_input normalized; nil if empty.
// ds itself is not modified.
func dedupe(ds []ovrlrd.PermissionDenial) []ovrlrd.PermissionDenial {
	if len(ds) == 0 {
		return nil
	}
	seen := make(map[string]struct{}, len(ds))
	out := make([]ovrlrd.PermissionDenial, 0, len(ds))
	for _, d := range ds {
		d.ToolInput = sse.NormalizeToolInput(d.ToolInput)
		key := d.ToolName + ":" + string(d.ToolInput)
		if _, dup := seen[key]; dup {
			continue
		}
		seen[key] = struct{}{}
		out = append(out, d)
	}
	return out
}

const (
	stdoutOpen  = "<local-command-stdout>"
	stdoutClose = "</local-command-stdout>"
)

// slashOutput returns the trimmed text of the first
// <local-command-stdout>…</local-command-stdout> in s ("" if none), like
// the old server's non-greedy regular expression.
func slashOutput(s string) string {
	i := strings.Index(s, stdoutOpen)
	if i < 0 {
		return ""
	}
	rest := s[i+len(stdoutOpen):]
	j := strings.Index(rest, stdoutClose)
	if j < 0 {
		return ""
	}
	return strings.TrimFunc(rest[:j], isJSSpace)
}

// isJSSpace reports whether JavaScript's trim removes r.
func isJSSpace(r rune) bool {
	return r == '\uFEFF' || (r != '\u0085' && unicode.IsSpace(r))
}

// isBlank reports whether s is empty or only JavaScript white space.
func isBlank(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c != ' ' && (c < '\t' || c > '\r') {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if !isJSSpace(r) {
			return false
		}
		i += size
	}
	return true
}
