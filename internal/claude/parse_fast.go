package claude

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// assistantType is how the CLI writes the type of an assistant line: a
// cheap first test, since a quote inside a JSON string is escaped and
// these bytes are never text.
var assistantType = []byte(`"type":"assistant"`)

// parseAssistantText reads an assistant message of text blocks, the line
// a streamed answer is made of, at a fraction of decodeLine's cost:
// encoding/json's reflection and allocations halve the relay's flat-out
// throughput, below its target of 100 000 events/s (make bench).
//
// It takes only lines whose reading is plain: valid JSON (json.Valid says
// so), type "assistant", keys without escapes, a message object whose
// content is an array of text blocks, and a string or null wherever a
// string is read. For any other line it reports false and decodeLine
// reads it. FuzzParseAssistantText holds the two to the same result.
func parseAssistantText(line []byte) (Event, bool) {
	if !bytes.Contains(line, assistantType) || !json.Valid(line) {
		return Event{}, false
	}
	var ev Event
	var content []byte
	ok := each(line, '{', func(key, v []byte) bool {
		switch string(key) {
		case "type":
			ev.Type = "assistant"
			return string(v) == `"assistant"`
		case "session_id":
			return setString(&ev.SessionID, v)
		case "parent_tool_use_id":
			return setString(&ev.ParentToolUseID, v)
		case "message":
			// A repeated message or content is left to decodeLine.
			return content == nil && each(v, '{', func(key, v []byte) bool {
				if string(key) != "content" {
					return true
				}
				first := content == nil
				content = v
				return first
			})
		}
		return true
	})
	if !ok || ev.Type == "" || len(content) == 0 {
		return Event{}, false
	}
	ok = each(content, '[', func(_, v []byte) bool {
		var b Block
		ok := each(v, '{', func(key, v []byte) bool {
			switch string(key) {
			case "type":
				b.Type = "text"
				return string(v) == `"text"`
			case "text":
				return setString(&b.Text, v)
			}
			return true
		})
		ev.Blocks = append(ev.Blocks, b)
		return ok && b.Type == "text"
	})
	if !ok || len(ev.Blocks) == 0 {
		return Event{}, false
	}
	return ev, true
}

// setString reads v into *s as get does, a null as ""; any other value
// reports false.
func setString(s *string, v []byte) bool {
	if string(v) == "null" {
		*s = ""
		return true
	}
	if v[0] != '"' {
		return false
	}
	if in := v[1 : len(v)-1]; bytes.IndexByte(in, '\\') < 0 && utf8.Valid(in) {
		*s = string(in)
		return true
	}
	var d string // not s: it would move every caller's Event to the heap
	if json.Unmarshal(v, &d) != nil {
		return false
	}
	*s = d
	return true
}

// each calls f with each key (as written) and value of the object v, or
// with each element of the array v (and a nil key), as open says; v must be
// valid JSON. It reports false if v is not of that kind, a key holds an
// escape (it could spell any name), or f returns false.
func each(v []byte, open byte, f func(key, value []byte) bool) bool {
	if len(v) == 0 || v[0] != open {
		return false
	}
	for i := skipSpace(v, 1); v[i] != '}' && v[i] != ']'; {
		var key []byte
		if open == '{' {
			end := valueEnd(v, i)
			if key = v[i+1 : end-1]; bytes.IndexByte(key, '\\') >= 0 {
				return false
			}
			i = skipSpace(v, skipSpace(v, end)+1) // past the colon
		}
		end := valueEnd(v, i)
		if !f(key, v[i:end]) {
			return false
		}
		if i = skipSpace(v, end); v[i] == ',' {
			i = skipSpace(v, i+1)
		}
	}
	return true
}

// valueEnd returns where the value that starts at v[i] ends.
func valueEnd(v []byte, i int) int {
	switch v[i] {
	case '"':
		return stringEnd(v, i)
	case '{', '[':
		for depth := 0; ; i++ {
			switch v[i] {
			case '"':
				i = stringEnd(v, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
	}
	for i < len(v) && strings.IndexByte(",}] \t\r\n", v[i]) < 0 { // a number, true, false or null
		i++
	}
	return i
}

// stringEnd returns where the string that starts at v[i] ends: after the
// first quote that an even run of backslashes (escapes) precedes.
func stringEnd(v []byte, i int) int {
	for i++; ; {
		q := i + bytes.IndexByte(v[i:], '"')
		b := q
		for b > i && v[b-1] == '\\' {
			b--
		}
		if (q-b)%2 == 0 {
			return q + 1
		}
		i = q + 1
	}
}

func skipSpace(v []byte, i int) int { return len(v) - len(bytes.TrimLeft(v[i:], " \t\r\n")) }
