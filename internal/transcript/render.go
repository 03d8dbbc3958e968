package transcript

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

var roles = map[string]ovrlrd.Role{"user": ovrlrd.RoleUser, "assistant": ovrlrd.RoleAssistant}

// Block types by the role whose messages may hold them: the API refuses a
// tool_use from the user or a tool_result from the assistant, so a resumed
// turn with one would fail on every call.
var (
	userOnly      = map[string]bool{"tool_result": true}
	assistantOnly = map[string]bool{"tool_use": true, "server_tool_use": true, "thinking": true, "redacted_thinking": true}
)

// render checks a message's content and renders it as the app shows it
// (the old server's proposal): text as it is, "[Tool Use: name]" and the
// call's JSON input, "[Tool Result]" and the result's text, "[Image]" and
// "[Document]" for what cannot be shown; thinking and other blocks are
// left out. Blocks are one blank line apart. The user's content may be a
// string; the CLI writes the assistant's as blocks. why is "" when the
// content is well formed.
func render(raw json.RawMessage, role string) (text, why string) {
	const bad = "has a message whose content is malformed"
	var s string
	if role == "user" && len(raw) > 0 && raw[0] == '"' {
		if json.Unmarshal(raw, &s) != nil {
			return "", bad
		}
		return s, ""
	}
	var blocks []json.RawMessage
	if len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &blocks) != nil {
		return "", bad
	}
	var parts []string
	for _, raw := range blocks {
		b, ok := decode(raw)
		typ, _ := b.str("type")
		if !ok || typ == "" || (role == "user" && assistantOnly[typ]) || (role == "assistant" && userOnly[typ]) {
			return "", bad
		}
		part, ok := renderBlock(b, typ)
		if !ok {
			return "", bad
		}
		if part != "" {
			parts = append(parts, part)
		}
	}
	return strings.Join(parts, "\n\n"), ""
}

// renderBlock checks one block's fields and renders it; ok is false for a
// malformed block.
func renderBlock(b object, typ string) (text string, ok bool) {
	switch typ {
	case "text":
		return b.str("text")
	case "tool_use", "server_tool_use":
		id, ok1 := b.str("id")
		name, ok2 := b.str("name")
		var input bytes.Buffer
		if !ok1 || !ok2 || id == "" || name == "" || !b.isKind("input", "{") || b["input"] == nil ||
			json.Compact(&input, b["input"]) != nil {
			return "", false
		}
		return "[Tool Use: " + name + "]\n" + input.String(), true
	case "tool_result":
		id, ok := b.str("tool_use_id")
		if _, flagOK := b.flag("is_error"); !ok || id == "" || !flagOK {
			return "", false
		}
		out, ok := resultText(b)
		if out != "" {
			out = "\n" + out
		}
		return "[Tool Result]" + out, ok
	case "image":
		return "[Image]", b.isKind("source", "{") && b["source"] != nil
	case "document":
		return "[Document]", b.isKind("source", "{") && b["source"] != nil
	}
	return "", true
}

// resultText is a tool result's content: a string, or the text of its
// blocks, one line apart, with "[Image]" for an image. Absent or null is
// no content.
func resultText(b object) (string, bool) {
	raw := b["content"]
	switch {
	case raw == nil || b.isNull("content"):
		return "", true
	case raw[0] == '"':
		s, ok := b.str("content")
		return s, ok
	case raw[0] != '[':
		return "", false
	}
	var blocks []json.RawMessage
	if json.Unmarshal(raw, &blocks) != nil {
		return "", false
	}
	var parts []string
	for _, raw := range blocks {
		c, ok := decode(raw)
		typ, _ := c.str("type")
		if !ok || typ == "" {
			return "", false
		}
		switch typ {
		case "text":
			s, ok := c.str("text")
			if !ok {
				return "", false
			}
			parts = append(parts, s)
		case "image":
			parts = append(parts, "[Image]")
		}
	}
	return strings.Join(parts, "\n"), true
}
