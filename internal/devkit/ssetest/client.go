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
	"regexp"
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
	// Present[key] is true for the JSON keys that were present and not
	// null; it lets tests tell "" from absent.
	Present map[string]bool
	// Data is the JSON text of the event (its data lines, concatenated).
	Data string
	// ID is the event's id line, which the app ignores; "" without one.
	ID string
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
		e.ID = r.ID()
		out = append(out, e)
	}
}

// DecodeData decodes one event's JSON as the app's SSEEvent decoder does.
func DecodeData(data string) (Event, error) {
	e := Event{Data: data, Present: map[string]bool{}}
	if !utf8.ValidString(data) {
		return e, errors.New("data is not valid UTF-8")
	}
	// The app's JSON decoder refuses \u escapes of unpaired UTF-16
	// surrogates, which Go's silently maps to U+FFFD.
	for _, loc := range escape.FindAllStringIndex(data, -1) {
		if loc[1]-loc[0] == 6 {
			return e, fmt.Errorf("unpaired surrogate escape at %d", loc[0])
		}
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(data), &obj); err != nil || obj == nil {
		return e, fmt.Errorf("not a JSON object: %v", err)
	}
	for key, dst := range map[string]*string{
		"type": &e.Type, "content": &e.Content, "conversationId": &e.ConversationID,
		"message": &e.Message, "toolName": &e.ToolName, "title": &e.Title,
	} {
		ok, err := decodeString(obj, key, dst)
		if err != nil {
			return e, err
		}
		e.Present[key] = ok
	}
	if !Types[e.Type] { // a missing or null type is "", no type either
		return e, fmt.Errorf("unknown type %q", e.Type)
	}
	if v := obj["denials"]; v != nil {
		items, ok := v.([]any)
		if !ok {
			return e, errors.New(`"denials" is not an array`)
		}
		e.Denials = make([]Denial, len(items))
		for i, item := range items {
			if err := decodeDenial(item, &e.Denials[i]); err != nil {
				return e, fmt.Errorf("denial %d: %w", i, err)
			}
		}
		e.Present["denials"] = true
	}
	return e, nil
}

func decodeDenial(item any, d *Denial) error {
	obj, _ := item.(map[string]any) // not an object: every field is missing
	for key, dst := range map[string]*string{"tool_name": &d.ToolName, "tool_use_id": &d.ToolUseID} {
		if ok, err := decodeString(obj, key, dst); !ok || err != nil {
			return fmt.Errorf("%q missing or not a string: %v", key, err)
		}
	}
	if d.ToolInput, _ = obj["tool_input"].(map[string]any); d.ToolInput == nil {
		return errors.New("tool_input missing or not an object")
	}
	return nil
}

// decodeString sets dst to obj[key] unless it is absent or null, when ok
// is false; anything but a JSON string is an error.
func decodeString(obj map[string]any, key string, dst *string) (ok bool, err error) {
	switch v := obj[key].(type) {
	case nil:
		return false, nil
	case string:
		*dst = v
		return true, nil
	}
	return false, fmt.Errorf("%q is not a string", key)
}

// escape matches one JSON escape, a surrogate pair first: scanning left
// to right, an escaped backslash is consumed before the "u" after it.
var escape = regexp.MustCompile(`\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|\\u[dD][89a-fA-F][0-9a-fA-F]{2}|\\.`)
