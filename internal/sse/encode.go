package sse

import (
	"bytes"
	"encoding/json"
	"io"
	"unicode/utf8"
)

// appendJSON appends e's compact JSON encoding to b. It allocates nothing
// beyond the growth of b, except for denials (which are rare).
//
// Strings are escaped like encoding/json with HTML escaping off: `"`, `\`
// and control characters are escaped (so the JSON never holds a raw
// newline), U+2028 and U+2029 are escaped, invalid UTF-8 bytes become
// \ufffd, everything else is written as raw UTF-8.
func (e Event) appendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = appendString(b, e.Type)
	if e.Content != "" || e.Type == Chunk || e.Type == SegmentEnd {
		b = append(b, `,"content":`...)
		b = appendString(b, e.Content)
	}
	if e.ConversationID != "" {
		b = append(b, `,"conversationId":`...)
		b = appendString(b, e.ConversationID)
	}
	if e.Message != "" {
		b = append(b, `,"message":`...)
		b = appendString(b, e.Message)
	}
	if e.ToolName != "" {
		b = append(b, `,"toolName":`...)
		b = appendString(b, e.ToolName)
	}
	if e.Title != "" {
		b = append(b, `,"title":`...)
		b = appendString(b, e.Title)
	}
	if len(e.Denials) > 0 || e.Type == PermissionRequired {
		b = append(b, `,"denials":[`...)
		for i, d := range e.Denials {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"tool_name":`...)
			b = appendString(b, d.ToolName)
			b = append(b, `,"tool_use_id":`...)
			b = appendString(b, d.ToolUseID)
			b = append(b, `,"tool_input":`...)
			b = appendToolInput(b, d.ToolInput)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// safeASCII[c] is true for the ASCII bytes written as they are inside a
// JSON string.
var safeASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendString appends s as a JSON string literal.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if safeASCII[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendToolInput appends raw, normalized as NormalizeToolInput describes.
func appendToolInput(b []byte, raw json.RawMessage) []byte {
	if !isObject(raw) || !json.Valid(raw) {
		return append(b, "{}"...)
	}
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
		case string:
			b = appendString(b, t)
		case json.Number:
			b = append(b, t...)
		case bool:
			if t {
				b = append(b, "true"...)
			} else {
				b = append(b, "false"...)
			}
		case nil:
			b = append(b, "null"...)
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
