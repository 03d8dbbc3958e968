package transcript

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"unicode/utf8"
)

// object is a JSON object read as the CLI reads it: keys match exactly
// (encoding/json's struct fields would take any case), and of a repeated
// key the last one counts, as with JSON.parse.
type object map[string]json.RawMessage

func decode(raw []byte) (object, bool) {
	o, err := decodeLine(raw)
	return o, err == nil && o != nil // null decodes to a nil map
}

func decodeLine(raw []byte) (object, error) {
	var o object
	err := json.Unmarshal(raw, &o)
	return o, err
}

// str reads key as a string; ok is false if it is absent or of another
// JSON type.
func (o object) str(key string) (s string, ok bool) {
	v, present := o[key]
	return s, present && v[0] == '"' && json.Unmarshal(v, &s) == nil
}

// isNull reports whether key is present and null.
func (o object) isNull(key string) bool { v, ok := o[key]; return ok && string(v) == "null" }

// isKind reports whether key is absent, or of the JSON kind whose values
// start with one of the bytes in starts.
func (o object) isKind(key, starts string) bool {
	v, ok := o[key]
	if !ok {
		return true
	}
	for i := range len(starts) {
		if v[0] == starts[i] {
			return true
		}
	}
	return false
}

// flag reads an optional boolean: absent is false, and ok is false for
// any other JSON type.
func (o object) flag(key string) (set, ok bool) {
	switch string(o[key]) {
	case "", "false":
		return false, true
	case "true":
		return true, true
	}
	return false, false
}

// uuidPattern is how the CLI names sessions and entries (crypto.randomUUID).
// Anything else in a session id would reach a path: the file's name and
// --resume.
var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func isUUID(s string) bool { return uuidPattern.MatchString(s) }

// IsSessionID reports whether s names a session as the CLI does (a
// lowercase UUID): only such an id becomes a file name.
func IsSessionID(s string) bool { return isUUID(s) }

// Entry types. The chain types are the CLI's messages: it keys them by
// uuid and rebuilds the conversation by walking parentUuid back from the
// last one. progress entries may sit in that chain too (older CLIs), and
// the CLI bridges over them.
var chainTypes = map[string]bool{"user": true, "assistant": true, "attachment": true, "system": true, "progress": true}

// line checks one non-blank line and converts it, returning why it is
// refused ("" if it is not), worded to follow "Line N of the transcript".
func (p *parser) line(raw []byte) string {
	// encoding/json would read invalid UTF-8 as U+FFFD; the CLI never
	// writes it.
	if !utf8.Valid(raw) {
		return "is not valid JSON"
	}
	o, err := decodeLine(raw)
	if _, syntax := errors.AsType[*json.SyntaxError](err); syntax {
		return "is not valid JSON"
	}
	if err != nil || o == nil {
		return "is not a JSON object"
	}
	typ, ok := o.str("type")
	if !ok || typ == "" {
		return "has no type"
	}
	if id, ok := o.str("sessionId"); ok && id != p.id {
		return "belongs to another session"
	} else if !ok && o["sessionId"] != nil {
		return "has a sessionId that is not a string"
	}
	for _, key := range []string{"uuid", "parentUuid", "logicalParentUuid", "leafUuid"} {
		if s, ok := o.str(key); (ok && !isUUID(s)) || (!ok && o[key] != nil && !o.isNull(key)) {
			return "has a " + key + " that is not a UUID"
		}
	}
	if chainTypes[typ] {
		return p.chain(o, typ)
	}
	return p.other(o, typ)
}

// chain checks an entry of the CLI's message chain, and converts a user or
// assistant one.
func (p *parser) chain(o object, typ string) string {
	uuid, ok := o.str("uuid")
	if !ok {
		return "has no uuid"
	}
	if _, present := o["parentUuid"]; !present {
		return "has no parentUuid"
	}
	if parent, ok := o.str("parentUuid"); ok && !p.seen[parent] {
		return "names a parentUuid that no earlier line holds"
	}
	if typ == "progress" { // a link of the chain, nothing more
		p.seen[uuid] = true
		return ""
	}
	if _, ok := o.str("sessionId"); !ok {
		return "has no sessionId"
	}
	ts, _ := o.str("timestamp")
	at, ok := parseTime(ts)
	if !ok {
		return "has no valid timestamp"
	}
	sidechain, ok1 := o.flag("isSidechain")
	meta, ok2 := o.flag("isMeta")
	compact, ok3 := o.flag("isCompactSummary")
	if !ok1 || !ok2 || !ok3 {
		return "has a flag that is not true or false"
	}
	cwd, ok := o.str("cwd")
	if !ok && o["cwd"] != nil {
		return "has a cwd that is not a string"
	}
	p.seen[uuid] = true
	if typ != "user" && typ != "assistant" {
		return ""
	}
	msg, ok := decode(o["message"])
	if !ok {
		return "has no message"
	}
	if role, _ := msg.str("role"); role != typ {
		return "has a message whose role does not match its type"
	}
	content, why := render(msg["content"], typ)
	if why != "" {
		return why
	}
	if p.cwd == "" {
		p.cwd = cwd
	}
	// A file may hold an entry twice (the CLI has duplicated lines); the
	// CLI keeps one. Sub-agents' messages (sidechains), and what the CLI
	// itself adds (meta messages, the summary that replaces a compacted
	// conversation) are not the conversation's; nor is a message with
	// nothing to show (thinking only).
	if p.converted[uuid] || sidechain || meta || compact || strings.TrimSpace(content) == "" {
		return ""
	}
	p.converted[uuid] = true
	p.messages = append(p.messages, Message{Role: roles[typ], Content: content, CreatedAt: at})
	return ""
}
