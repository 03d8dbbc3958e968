package claude

import (
	"bytes"
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
// Result). Any other type, stream_event included, gives Event{Type: type}
// and nothing else. Unknown fields are ignored, and so is a known field of
// an unexpected JSON type (it stays zero), so that a CLI upgrade cannot lose
// a result line. Keys match exactly (JSON is case-sensitive); of a repeated
// key the last one counts, as encoding/json decodes it (objects merge, a
// null or a value of the wrong type leaves the earlier one).
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

// decodeLine is ParseLine with encoding/json, for every line.
func decodeLine(line []byte) (Event, error) {
	if t := bytes.TrimLeft(line, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return Event{}, ErrNotObject
	}
	var l wireLine
	if err := json.Unmarshal(line, &l); err != nil {
		// A field of the wrong type is skipped, not fatal (see above).
		if _, wrongType := errors.AsType[*json.UnmarshalTypeError](err); !wrongType {
			return Event{}, fmt.Errorf("%w: %w", ErrNotObject, err)
		}
	}
	if l.Type == "" {
		return Event{}, ErrNoType
	}
	ev := Event{Type: l.Type}
	switch l.Type {
	case "system":
		ev.Subtype, ev.SessionID = l.Subtype, l.SessionID
	case "assistant":
		ev.SessionID, ev.ParentToolUseID = l.SessionID, l.ParentToolUseID
		ev.Blocks = blocks(l.Message.Content)
	case "user":
		ev.ParentToolUseID = l.ParentToolUseID
		if c := l.Message.Content; len(c) > 0 && c[0] == '"' {
			_ = json.Unmarshal(c, &ev.UserText) // valid: the line was
		}
	case "result":
		ev.Subtype, ev.SessionID = l.Subtype, l.SessionID
		ev.Result = &Result{
			IsError:           l.IsError,
			Text:              l.Result,
			APIErrorStatus:    apiStatus(l.APIErrorStatus),
			SessionID:         l.SessionID,
			TotalCostUSD:      l.TotalCostUSD,
			Usage:             l.Usage.Usage,
			PermissionDenials: denials(l.PermissionDenials),
			NumTurns:          l.NumTurns,
			DurationMS:        l.DurationMS,
		}
	}
	return ev, nil
}

// otherCase takes the value of a key that differs from a field's name only
// in case, which encoding/json would decode into that field. Declared
// before the fields, under their names in upper case, these decoys win the
// case-insensitive match (encoding/json prefers the first field in order)
// and drop the value, so that only the exact key reaches the field.
type otherCase struct{}

func (*otherCase) UnmarshalJSON([]byte) error { return nil }

// wireLine is a line's fields that ParseLine reads, of every type.
type wireLine struct {
	XType              otherCase `json:"TYPE"`
	XSubtype           otherCase `json:"SUBTYPE"`
	XSessionID         otherCase `json:"SESSION_ID"`
	XParentToolUseID   otherCase `json:"PARENT_TOOL_USE_ID"`
	XMessage           otherCase `json:"MESSAGE"`
	XIsError           otherCase `json:"IS_ERROR"`
	XAPIErrorStatus    otherCase `json:"API_ERROR_STATUS"`
	XResult            otherCase `json:"RESULT"`
	XTotalCostUSD      otherCase `json:"TOTAL_COST_USD"`
	XUsage             otherCase `json:"USAGE"`
	XPermissionDenials otherCase `json:"PERMISSION_DENIALS"`
	XNumTurns          otherCase `json:"NUM_TURNS"`
	XDurationMS        otherCase `json:"DURATION_MS"`

	Type            string `json:"type"`
	Subtype         string `json:"subtype"`
	SessionID       string `json:"session_id"`
	ParentToolUseID string `json:"parent_tool_use_id"`
	Message         struct {
		XContent otherCase `json:"CONTENT"`
		// A string (user) or an array of blocks (assistant): decoded
		// once the line's type says which is wanted.
		Content json.RawMessage `json:"content"`
	} `json:"message"`
	IsError           bool            `json:"is_error"`
	APIErrorStatus    json.RawMessage `json:"api_error_status"`
	Result            string          `json:"result"`
	TotalCostUSD      float64         `json:"total_cost_usd"`
	Usage             wireUsage       `json:"usage"`
	PermissionDenials []wireDenial    `json:"permission_denials"`
	NumTurns          int             `json:"num_turns"`
	DurationMS        int64           `json:"duration_ms"`
}

type wireUsage struct {
	XInputTokens              otherCase `json:"INPUT_TOKENS"`
	XOutputTokens             otherCase `json:"OUTPUT_TOKENS"`
	XCacheCreationInputTokens otherCase `json:"CACHE_CREATION_INPUT_TOKENS"`
	XCacheReadInputTokens     otherCase `json:"CACHE_READ_INPUT_TOKENS"`
	Usage
}

type wireDenial struct {
	XToolName  otherCase `json:"TOOL_NAME"`
	XToolUseID otherCase `json:"TOOL_USE_ID"`
	XToolInput otherCase `json:"TOOL_INPUT"`
	Denial
}

type wireBlock struct {
	XType  otherCase `json:"TYPE"`
	XText  otherCase `json:"TEXT"`
	XName  otherCase `json:"NAME"`
	XID    otherCase `json:"ID"`
	XInput otherCase `json:"INPUT"`

	Type  string          `json:"type"`
	Text  string          `json:"text"`
	Name  string          `json:"name"`
	ID    string          `json:"id"`
	Input json.RawMessage `json:"input"`
}

// blocks decodes an assistant message's content array. An element that is
// not an object gives a zero Block; an empty array gives nil.
func blocks(content json.RawMessage) []Block {
	var in []wireBlock
	if len(content) == 0 || content[0] != '[' {
		return nil
	}
	_ = json.Unmarshal(content, &in) // only elements of the wrong type fail
	if len(in) == 0 {
		return nil
	}
	out := make([]Block, len(in))
	for i, b := range in {
		out[i].Type = b.Type
		switch b.Type {
		case "text":
			out[i].Text = b.Text
		case "tool_use", "server_tool_use":
			out[i].ToolName, out[i].ToolUseID, out[i].Input = b.Name, b.ID, b.Input
		}
	}
	return out
}

// denials keeps permission_denials' nil (null, absent, not an array) apart
// from an empty array, so that it encodes back as [].
func denials(in []wireDenial) []Denial {
	if in == nil {
		return nil
	}
	out := make([]Denial, len(in))
	for i, d := range in {
		out[i] = d.Denial
	}
	return out
}

// apiStatus reads api_error_status: a number (its integer part) or a
// numeric string; null, negative, huge or anything else is 0 (no status).
func apiStatus(v json.RawMessage) int {
	if len(v) > 1 && v[0] == '"' {
		v = v[1 : len(v)-1]
	}
	n := 0
	for i, c := range v {
		if c == '.' && i > 0 {
			break
		}
		if c < '0' || c > '9' || n > 1e6 {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}
