// Package ssetest decodes an SSE byte stream the way the iOS app does, for
// tests of anything that streams events to it.
//
// It follows the app's parser as the client contract (§3.1) describes it,
// and errs on the strict side where the app's JSON decoder is: it rejects
// unknown types, wrongly typed fields, malformed denials, invalid UTF-8 and
// unpaired surrogate escapes. An event it rejects is one the app would show
// as raw JSON text (or drop).
package ssetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Event is an event as the app decodes it. Absent optional fields are "".
type Event struct {
	Type           string
	Content        string
	ConversationID string
	Message        string
	ToolName       string
	Title          string
	Denials        []Denial
	// Present holds the JSON keys (besides type) that were present and
	// not null; it lets tests tell "" from absent.
	Present map[string]bool
	// Data is the JSON text of the event (its data lines, concatenated).
	Data string
}

// Denial is a permission denial as the app decodes it.
type Denial struct {
	ToolName  string
	ToolUseID string
	ToolInput map[string]any
}

// Types are the event types the app decodes; any other fails the decode.
var Types = map[string]bool{
	"chunk": true, "segment_end": true, "tool_start": true, "tool_end": true,
	"complete": true, "no_response": true, "permission_required": true,
	"error": true, "ping": true,
}

// Data returns an event's data: the lines starting with "data:", prefix
// stripped, spaces and tabs trimmed, concatenated with no separator. Other
// lines (comments, event:, id:) are ignored. ok is false when there is no
// data (the app skips such an event).
func Data(event []byte) (data string, ok bool) {
	b, err := NewReader(io.MultiReader(bytes.NewReader(event), strings.NewReader("\n\n"))).Next()
	return string(b), err == nil
}

// Decode decodes a whole stream. It fails on any event the app could not
// decode, and on trailing bytes that do not form a complete event.
func Decode(stream []byte) ([]Event, error) {
	if !utf8.Valid(stream) {
		return nil, errors.New("stream is not valid UTF-8")
	}
	var out []Event
	for r := NewReader(bytes.NewReader(stream)); ; {
		data, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		e, err := DecodeData(string(data))
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
}

// DecodeData decodes one event's JSON as the app's SSEEvent decoder does.
func DecodeData(data string) (Event, error) {
	e := Event{Data: data, Present: map[string]bool{}}
	if !utf8.ValidString(data) {
		return e, errors.New("data is not valid UTF-8")
	}
	if err := checkSurrogates(data); err != nil {
		return e, err
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(data), &obj); err != nil {
		return e, fmt.Errorf("not a JSON object: %w", err)
	}
	if obj == nil {
		return e, errors.New("not a JSON object: null")
	}
	t, ok := obj["type"]
	if !ok || isNull(t) {
		return e, errors.New(`missing "type"`)
	}
	if err := json.Unmarshal(t, &e.Type); err != nil {
		return e, fmt.Errorf(`"type": %w`, err)
	}
	if !Types[e.Type] {
		return e, fmt.Errorf("unknown type %q", e.Type)
	}
	for key, dst := range map[string]*string{
		"content": &e.Content, "conversationId": &e.ConversationID,
		"message": &e.Message, "toolName": &e.ToolName, "title": &e.Title,
	} {
		v, ok := obj[key]
		if !ok || isNull(v) {
			continue
		}
		if v[0] != '"' {
			return e, fmt.Errorf("%q is not a string", key)
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return e, fmt.Errorf("%q: %w", key, err)
		}
		e.Present[key] = true
	}
	if v, ok := obj["denials"]; ok && !isNull(v) {
		ds, err := decodeDenials(v)
		if err != nil {
			return e, err
		}
		e.Denials = ds
		e.Present["denials"] = true
	}
	return e, nil
}

func decodeDenials(v json.RawMessage) ([]Denial, error) {
	var items []json.RawMessage
	if v[0] != '[' {
		return nil, errors.New(`"denials" is not an array`)
	}
	if err := json.Unmarshal(v, &items); err != nil {
		return nil, fmt.Errorf(`"denials": %w`, err)
	}
	out := make([]Denial, 0, len(items))
	for i, item := range items {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(item, &obj); err != nil || obj == nil {
			return nil, fmt.Errorf("denial %d is not an object", i)
		}
		var d Denial
		for key, dst := range map[string]*string{"tool_name": &d.ToolName, "tool_use_id": &d.ToolUseID} {
			f, ok := obj[key]
			if !ok || isNull(f) || f[0] != '"' {
				return nil, fmt.Errorf("denial %d: %q missing or not a string", i, key)
			}
			if err := json.Unmarshal(f, dst); err != nil {
				return nil, fmt.Errorf("denial %d: %q: %w", i, key, err)
			}
		}
		in, ok := obj["tool_input"]
		if !ok || isNull(in) || in[0] != '{' {
			return nil, fmt.Errorf("denial %d: tool_input missing or not an object", i)
		}
		if err := json.Unmarshal(in, &d.ToolInput); err != nil {
			return nil, fmt.Errorf("denial %d: tool_input: %w", i, err)
		}
		out = append(out, d)
	}
	return out, nil
}

func isNull(v json.RawMessage) bool { return string(v) == "null" }

// checkSurrogates rejects \u escapes of unpaired UTF-16 surrogates, which
// the app's JSON decoder refuses (Go's silently maps them to U+FFFD).
func checkSurrogates(s string) error {
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 >= len(s) {
			continue
		}
		if s[i+1] != 'u' {
			i++ // skip the escaped character
			continue
		}
		r, ok := hex4(s, i+2)
		if !ok {
			return fmt.Errorf("bad \\u escape at %d", i)
		}
		switch {
		case r >= 0xD800 && r < 0xDC00:
			lo, ok := -1, false
			if i+12 <= len(s) && s[i+6] == '\\' && s[i+7] == 'u' {
				lo, ok = hex4(s, i+8)
			}
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return fmt.Errorf("unpaired surrogate escape at %d", i)
			}
			i += 11
		case r >= 0xDC00 && r <= 0xDFFF:
			return fmt.Errorf("unpaired surrogate escape at %d", i)
		default:
			i += 5
		}
	}
	return nil
}

func hex4(s string, i int) (int, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	n := 0
	for _, c := range []byte(s[i : i+4]) {
		n <<= 4
		switch {
		case c >= '0' && c <= '9':
			n |= int(c - '0')
		case c >= 'a' && c <= 'f':
			n |= int(c-'a') + 10
		case c >= 'A' && c <= 'F':
			n |= int(c-'A') + 10
		default:
			return 0, false
		}
	}
	return n, true
}
