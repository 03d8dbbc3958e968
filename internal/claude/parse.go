package claude

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"
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
// key the last one counts.
//
// A line that is not a valid JSON object, or has no type, is an error
// (wrapping ErrNotObject or ErrNoType); the caller counts it, it is never
// fatal. The returned Event shares no memory with line.
//
// It is a single-purpose scanner rather than encoding/json: it validates the
// line in one pass, remembering where the fields it needs are, then decodes
// only those the type uses (see BenchmarkParseLine).
func ParseLine(line []byte) (Event, error) {
	var top [nTop]span
	s := scanner{b: line}
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return Event{}, ErrNotObject
	}
	if !s.object(topKeys[:], top[:]) {
		return Event{}, syntaxError(s.i)
	}
	if s.ws(); s.i != len(s.b) {
		return Event{}, syntaxError(s.i)
	}
	typ, ok := internType(top[kType].of(line))
	if !ok || typ == "" {
		return Event{}, ErrNoType
	}
	ev := Event{Type: typ}
	switch typ {
	case "system":
		ev.Subtype = internSubtype(top[kSubtype].of(line))
		ev.SessionID = str(top[kSessionID].of(line))
	case "assistant":
		ev.SessionID = str(top[kSessionID].of(line))
		ev.ParentToolUseID = str(top[kParentToolUseID].of(line))
		if c := messageContent(top[kMessage].of(line)); len(c) > 0 && c[0] == '[' {
			ev.Blocks = blocks(c)
		}
	case "user":
		ev.ParentToolUseID = str(top[kParentToolUseID].of(line))
		if c := messageContent(top[kMessage].of(line)); len(c) > 0 && c[0] == '"' {
			ev.UserText = str(c)
		}
	case "result":
		ev.Subtype = internSubtype(top[kSubtype].of(line))
		ev.SessionID = str(top[kSessionID].of(line))
		ev.Result = &Result{
			IsError:           top[kIsError].of(line).isTrue(),
			Text:              str(top[kResult].of(line)),
			APIErrorStatus:    apiStatus(top[kAPIErrorStatus].of(line)),
			SessionID:         ev.SessionID,
			TotalCostUSD:      float(top[kTotalCostUSD].of(line)),
			Usage:             usage(top[kUsage].of(line)),
			PermissionDenials: denials(top[kPermissionDenials].of(line)),
			NumTurns:          int(integer(top[kNumTurns].of(line))),
			DurationMS:        integer(top[kDurationMS].of(line)),
		}
	}
	return ev, nil
}

// The top-level keys ParseLine reads, in topKeys order.
const (
	kType = iota
	kSubtype
	kSessionID
	kParentToolUseID
	kMessage
	kIsError
	kAPIErrorStatus
	kResult
	kTotalCostUSD
	kUsage
	kPermissionDenials
	kNumTurns
	kDurationMS
	nTop
)

var (
	topKeys = [nTop]string{"type", "subtype", "session_id", "parent_tool_use_id", "message", "is_error",
		"api_error_status", "result", "total_cost_usd", "usage", "permission_denials", "num_turns", "duration_ms"}
	messageKeys = []string{"content"}
	blockKeys   = []string{"type", "text", "name", "id", "input"}
	usageKeys   = []string{"input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"}
	denialKeys  = []string{"tool_name", "tool_use_id", "tool_input"}
)

type syntaxError int

func (e syntaxError) Error() string {
	return "claude: stream-json line is not valid JSON (offset " + strconv.Itoa(int(e)) + ")"
}
func (e syntaxError) Unwrap() error { return ErrNotObject }

// span is where a value lies in the line; the zero span is "absent".
type span struct{ start, end int }

// val is one JSON value, already validated; nil when absent.
type val []byte

func (p span) of(b []byte) val {
	if p.end == 0 {
		return nil
	}
	return b[p.start:p.end]
}

func (v val) isTrue() bool { return string(v) == "true" }

// scanner validates JSON (as strictly as encoding/json) while skipping it.
type scanner struct {
	b     []byte
	i     int
	depth int
}

const maxDepth = 10000 // encoding/json's nesting limit

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value skips one value (after white space).
func (s *scanner) value() bool {
	s.ws()
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object(nil, nil)
	case c == '[':
		return s.array()
	case c == '"':
		_, ok := s.str()
		return ok
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	}
	return false
}

func (s *scanner) lit(l string) bool {
	if len(s.b)-s.i >= len(l) && string(s.b[s.i:s.i+len(l)]) == l {
		s.i += len(l)
		return true
	}
	return false
}

func (s *scanner) number() bool {
	b, i := s.b, s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	s.i = i
	return true
}

// str skips a string (at its opening quote) and reports whether it holds
// escapes.
func (s *scanner) str() (escaped, ok bool) {
	b := s.b
	for i := s.i + 1; i < len(b); i++ {
		for i < len(b) && plainByte[b[i]] {
			i++
		}
		if i >= len(b) {
			break
		}
		switch c := b[i]; {
		case c == '"':
			s.i = i + 1
			return escaped, true
		case c == '\\':
			escaped = true
			i++
			if i >= len(b) {
				return false, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) {
					return false, false
				}
				for _, h := range b[i+1 : i+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return false, false
					}
				}
				i += 4
			default:
				return false, false
			}
		case c < 0x20:
			return false, false
		}
	}
	return false, false
}

// plainByte is true for the bytes a string holds as they are: not '"', not
// '\\', not a control character.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// object skips an object (at its '{'), recording in spans[k] where the value
// of keys[k] lies.
func (s *scanner) object(keys []string, spans []span) bool {
	if s.depth++; s.depth > maxDepth {
		return false
	}
	s.i++ // '{'
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		s.depth--
		return true
	}
	for {
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return false
		}
		kStart := s.i
		escaped, ok := s.str()
		if !ok {
			return false
		}
		key := s.b[kStart+1 : s.i-1]
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		s.ws()
		vStart := s.i
		if !s.value() {
			return false
		}
		if keys != nil {
			k := keyIndex(keys, key, escaped)
			if k >= 0 {
				spans[k] = span{vStart, s.i}
			}
		}
		s.ws()
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			s.depth--
			return true
		default:
			return false
		}
	}
}

func keyIndex(keys []string, key []byte, escaped bool) int {
	if escaped {
		var k string
		if json.Unmarshal(append(append([]byte{'"'}, key...), '"'), &k) != nil {
			return -1
		}
		key = []byte(k)
	}
	for i, k := range keys {
		if string(key) == k {
			return i
		}
	}
	return -1
}

// array skips an array (at its '[').
func (s *scanner) array() bool {
	if s.depth++; s.depth > maxDepth {
		return false
	}
	s.i++ // '['
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		s.depth--
		return true
	}
	for {
		if !s.value() {
			return false
		}
		s.ws()
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			s.depth--
			return true
		default:
			return false
		}
	}
}

// nextElement moves to the next element of an array already validated
// (start with i = 0, at the '['), and reports whether there is one.
func (s *scanner) nextElement() bool {
	if s.i < len(s.b) && (s.b[s.i] == '[' || s.b[s.i] == ',') {
		s.i++
		s.ws()
		return s.i < len(s.b) && s.b[s.i] != ']'
	}
	return false
}

// element reads the element the scanner is at: if it is an object, the
// values of keys are recorded in spans (relative to s.b) and ok is true.
func (s *scanner) element(keys []string, spans []span) (isObject, ok bool) {
	if s.b[s.i] != '{' {
		return false, s.value()
	}
	return true, s.object(keys, spans)
}

// fields records where keys' values lie in v, if v is an object.
func fields(v val, keys []string, spans []span) bool {
	if len(v) == 0 || v[0] != '{' {
		return false
	}
	s := scanner{b: v}
	return s.object(keys, spans)
}

// str decodes a string value; any other value gives "".
func str(v val) string {
	s, _ := strOK(v)
	return s
}

func strOK(v val) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	in := v[1 : len(v)-1]
	if !hasBackslash(in) && utf8.Valid(in) {
		return string(in), true
	}
	// Escapes or invalid UTF-8: decode as encoding/json does (U+FFFD for
	// bad bytes and lone surrogates).
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

func hasBackslash(b []byte) bool { return bytes.IndexByte(b, '\\') >= 0 }

// internType returns the common types without allocating; ok is false if v
// is not a string.
func internType(v val) (string, bool) {
	if len(v) >= 2 && v[0] == '"' {
		switch string(v[1 : len(v)-1]) {
		case "assistant":
			return "assistant", true
		case "user":
			return "user", true
		case "system":
			return "system", true
		case "result":
			return "result", true
		case "stream_event":
			return "stream_event", true
		}
	}
	return strOK(v)
}

func internSubtype(v val) string {
	if len(v) >= 2 && v[0] == '"' {
		switch string(v[1 : len(v)-1]) {
		case "init":
			return "init"
		case "api_retry":
			return "api_retry"
		case "success":
			return "success"
		}
	}
	return str(v)
}

// integer decodes an integral number that fits int64; anything else
// (fraction, exponent, overflow, other types) gives 0, as encoding/json
// leaves an int field it cannot set.
func integer(v val) int64 {
	if len(v) == 0 {
		return 0
	}
	neg := v[0] == '-'
	d := v
	if neg {
		d = v[1:]
	}
	if len(d) == 0 || len(d) > 19 {
		return 0
	}
	var n uint64
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + uint64(c-'0')
	}
	switch {
	case neg && n <= 1<<63:
		return int64(-n)
	case !neg && n < 1<<63:
		return int64(n)
	}
	return 0
}

func float(v val) float64 {
	if len(v) == 0 || !(v[0] == '-' || v[0] >= '0' && v[0] <= '9') {
		return 0
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil {
		return 0
	}
	return f
}

// apiStatus reads api_error_status: a number (its integer part) or a
// numeric string; null, negative, huge or anything else is 0 (no status).
func apiStatus(v val) int {
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

func raw(v val) json.RawMessage {
	if len(v) == 0 {
		return nil
	}
	return append(json.RawMessage(nil), v...)
}

func messageContent(msg val) val {
	var sp [1]span
	if !fields(msg, messageKeys, sp[:]) {
		return nil
	}
	return sp[0].of(msg)
}

// blocks decodes an assistant message's content array. An element that is
// not an object gives a zero Block; an empty array gives nil.
func blocks(c val) []Block {
	if len(c) == 0 || c[0] != '[' {
		return nil
	}
	var small [4]Block
	out := small[:0]
	s := scanner{b: c}
	for s.nextElement() {
		var sp [5]span
		var b Block
		isObj, ok := s.element(blockKeys, sp[:])
		if !ok {
			break
		}
		if isObj {
			b.Type = internBlockType(sp[0].of(c))
			switch b.Type {
			case "text":
				b.Text = str(sp[1].of(c))
			case "tool_use", "server_tool_use":
				b.ToolName = str(sp[2].of(c))
				b.ToolUseID = str(sp[3].of(c))
				b.Input = raw(sp[4].of(c))
			}
		}
		out = append(out, b)
		s.ws()
	}
	if len(out) == 0 {
		return nil
	}
	return append([]Block(nil), out...)
}

func internBlockType(v val) string {
	if len(v) >= 2 && v[0] == '"' {
		switch string(v[1 : len(v)-1]) {
		case "text":
			return "text"
		case "tool_use":
			return "tool_use"
		case "thinking":
			return "thinking"
		}
	}
	return str(v)
}

func usage(v val) Usage {
	var sp [4]span
	if !fields(v, usageKeys, sp[:]) {
		return Usage{}
	}
	return Usage{
		InputTokens:              integer(sp[0].of(v)),
		OutputTokens:             integer(sp[1].of(v)),
		CacheCreationInputTokens: integer(sp[2].of(v)),
		CacheReadInputTokens:     integer(sp[3].of(v)),
	}
}

// denials decodes permission_denials: null or absent gives nil, [] an empty
// slice (so that it encodes back as []).
func denials(v val) []Denial {
	if len(v) == 0 || v[0] != '[' {
		return nil
	}
	out := []Denial{}
	s := scanner{b: v}
	for s.nextElement() {
		var sp [3]span
		var d Denial
		isObj, ok := s.element(denialKeys, sp[:])
		if !ok {
			break
		}
		if isObj {
			d.ToolName = str(sp[0].of(v))
			d.ToolUseID = str(sp[1].of(v))
			d.ToolInput = raw(sp[2].of(v))
		}
		out = append(out, d)
		s.ws()
	}
	return out
}
