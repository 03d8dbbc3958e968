package claude

import (
	"encoding/json"
	"errors"
	"fmt"
)

// ErrNotObject is returned by ParseLine for a line that is not a JSON
// object (or not valid JSON); ErrNoType for an object without a string
// "type". Test with errors.Is.
var (
	ErrNotObject = errors.New("claude: stream-json line is not a JSON object")
	ErrNoType    = errors.New("claude: stream-json line has no type")
)

// ParseLine parses one line of the CLI's stream-json output.
//
// The line's type decides what is filled in: system (Subtype, SessionID),
// assistant (Blocks, ParentToolUseID, SessionID), user (UserText when the
// content is a string, ParentToolUseID), result (Subtype, SessionID,
// Result), control_request (Subtype, Ask), control_cancel_request
// (Withdrawn). Any other type, stream_event included, gives Event{Type: type}
// and nothing else. Unknown fields are ignored, and so is a known field of
// an unexpected JSON type (it stays zero), so that a CLI upgrade cannot lose
// a result line. Keys match exactly (JSON is case-sensitive); of a repeated
// key the last one counts, whole.
//
// A line that is not a valid JSON object, or has no type, is an error
// (wrapping ErrNotObject or ErrNoType); the caller counts it, it is never
// fatal. The returned Event shares no memory with line.
func ParseLine(line []byte) (Event, error) {
	if ev, ok := parseAssistantText(line); ok {
		return ev, nil
	}
	return decodeLine(line)
}

// decodeLine is ParseLine with encoding/json, for every line. It reads
// objects as maps, whose keys match exactly (its struct fields would take
// any case).
func decodeLine(line []byte) (Event, error) {
	var l object
	if err := json.Unmarshal(line, &l); err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrNotObject, err)
	}
	if l == nil { // null
		return Event{}, ErrNotObject
	}
	ev := Event{Type: get[string](l, "type")}
	if ev.Type == "" {
		return Event{}, ErrNoType
	}
	switch ev.Type {
	case "system":
		ev.Subtype, ev.SessionID = get[string](l, "subtype"), get[string](l, "session_id")
	case "assistant":
		ev.SessionID, ev.ParentToolUseID = get[string](l, "session_id"), get[string](l, "parent_tool_use_id")
		for _, b := range get[[]object](get[object](l, "message"), "content") {
			ev.Blocks = append(ev.Blocks, Block{Type: get[string](b, "type")})
			switch out := &ev.Blocks[len(ev.Blocks)-1]; out.Type {
			case "text":
				out.Text = get[string](b, "text")
			case "tool_use", "server_tool_use":
				out.ToolName, out.ToolUseID, out.Input = get[string](b, "name"), get[string](b, "id"), b["input"]
			}
		}
	case "user":
		ev.ParentToolUseID = get[string](l, "parent_tool_use_id")
		ev.UserText = get[string](get[object](l, "message"), "content")
	case "control_request":
		req := get[object](l, "request")
		ev.Subtype = get[string](req, "subtype")
		ev.Ask = &Ask{RequestID: get[string](l, "request_id"), ToolName: get[string](req, "tool_name"),
			ToolUseID: get[string](req, "tool_use_id"), Input: req["input"]}
	case "control_cancel_request":
		ev.Withdrawn = get[string](l, "request_id")
	case "result":
		ev.Subtype, ev.SessionID = get[string](l, "subtype"), get[string](l, "session_id")
		u := get[object](l, "usage")
		ev.Result = &Result{
			IsError:        get[bool](l, "is_error"),
			Text:           get[string](l, "result"),
			APIErrorStatus: apiStatus(l["api_error_status"]),
			SessionID:      ev.SessionID,
			TotalCostUSD:   get[float64](l, "total_cost_usd"),
			Usage: Usage{get[int64](u, "input_tokens"), get[int64](u, "output_tokens"),
				get[int64](u, "cache_creation_input_tokens"), get[int64](u, "cache_read_input_tokens")},
		}
		// nil (null, absent, not an array) stays apart from [], so that it
		// encodes back as [].
		if ds := get[[]object](l, "permission_denials"); ds != nil {
			ev.Result.PermissionDenials = make([]Denial, len(ds))
			for i, d := range ds {
				ev.Result.PermissionDenials[i] = Denial{ToolName: get[string](d, "tool_name"),
					ToolUseID: get[string](d, "tool_use_id"), ToolInput: d["tool_input"]}
			}
		}
	}
	return ev, nil
}

// object is a JSON object: its values are the line's bytes, copied.
type object map[string]json.RawMessage

// get reads o's key as a T: zero if it is absent, null or of another type
// (a CLI upgrade that changes a field's type cannot lose a line).
func get[T any](o object, key string) T {
	var v T
	_ = json.Unmarshal(o[key], &v)
	return v
}

// apiStatus reads api_error_status: a number (its integer part) or a
// numeric string; null, negative, huge or anything else is 0 (no status).
func apiStatus(v json.RawMessage) int {
	var n json.Number // a string that holds a number decodes too
	if json.Unmarshal(v, &n) != nil {
		return 0
	}
	f, err := n.Float64()
	if err != nil || f < 0 || f > 1e6 {
		return 0
	}
	return int(f)
}
