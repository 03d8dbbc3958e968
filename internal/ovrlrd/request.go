package ovrlrd

import (
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// StartLease is how long a begun, or claimed, turn holds its conversation
// until its run's own renewals take over.
const StartLease = time.Minute

// maxToolName is the longest tool name a request may approve.
const maxToolName = 100

// CheckText checks a message's text, sent as field: present, valid UTF-8,
// at most MaxMessage characters.
func CheckText(field, text string) error {
	switch {
	case text == "":
		return Errorf(EINVALID, "Field %q is required.", field)
	case !utf8.ValidString(text):
		return Errorf(EINVALID, "Field %q must be valid UTF-8.", field)
	case utf8.RuneCountInString(text) > MaxMessage:
		return Errorf(EINVALID, "Field %q must be at most %d characters.", field, MaxMessage)
	}
	return nil
}

// Check checks the request against the server's tool allow-list.
func (r TurnRequest) Check(allowList []string) error {
	if err := CheckText("message", r.Message); err != nil {
		return err
	}
	if len(r.AllowedTools) > MaxAllowedTools {
		return Errorf(EINVALID, `Field "allowedTools" may hold at most %d tools.`, MaxAllowedTools)
	}
	if i := slices.IndexFunc(r.AllowedTools, func(t string) bool { return !ToolAllowed(t, allowList) }); i >= 0 {
		return Errorf(EINVALID, "Tool %q is not allowed on this server.", clip(r.AllowedTools[i], maxToolName))
	}
	return nil
}

// ToolAllowed reports whether a user may approve tool, live or in a
// request's allowedTools: a name the
// allow-list holds, or a pattern such as Bash(git log:*) of such a name, or
// a pattern the list holds verbatim. Names never contain whitespace: the CLI
// splits --allowedTools on it.
func ToolAllowed(tool string, allowList []string) bool {
	if tool == "" || len(tool) > maxToolName || strings.ContainsAny(tool, " \t\r\n,") {
		return false
	}
	name, pattern, hasPattern := strings.Cut(tool, "(")
	if hasPattern && (!strings.HasSuffix(pattern, ")") || strings.ContainsAny(strings.TrimSuffix(pattern, ")"), "()")) {
		return false
	}
	return slices.ContainsFunc(allowList, func(a string) bool { return a == tool || (a == name && isName(name)) })
}

// nameChars are the characters of a tool's name.
const nameChars = "_-.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func isName(s string) bool { return s != "" && strings.Trim(s, nameChars) == "" }

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// Opening is the message stored before the turn runs: the user's prompt,
// or, for an approval retry, a system note of what was approved (the prompt
// is not stored twice).
func (r TurnRequest) Opening() NewMessage {
	if len(r.AllowedTools) > 0 {
		return NewMessage{Role: RoleSystem, Content: "✓ Approved: " + strings.Join(r.AllowedTools, ", ")}
	}
	return NewMessage{Role: RoleUser, Content: r.Message}
}

// Tools is the CLI's --allowedTools list: the approved tools, each once.
func (r TurnRequest) Tools() []string {
	var out []string
	for _, t := range r.AllowedTools {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}
