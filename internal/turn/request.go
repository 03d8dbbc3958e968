// Package turn runs one turn of a conversation: the pre-stream checks and
// writes, the Claude Code CLI under its deadlines, the translation of its
// output into the app's events, the save that comes BEFORE the terminal
// event, cancellation, and the title of a new conversation.
package turn

import (
	"strings"
	"unicode/utf8"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// maxToolName is the longest tool name a request may approve.
const maxToolName = 100

// approvedPrefix starts the system message recorded for an approval retry.
const approvedPrefix = "✓ Approved: "

// validate checks the request against the server's tool allow-list.
func validate(r ovrlrd.TurnRequest, allowList []string) error {
	switch {
	case r.Message == "":
		return ovrlrd.Errorf(ovrlrd.EINVALID, `Field "message" is required.`)
	case !utf8.ValidString(r.Message):
		return ovrlrd.Errorf(ovrlrd.EINVALID, `Field "message" must be valid UTF-8.`)
	case utf8.RuneCountInString(r.Message) > ovrlrd.MaxMessage:
		return ovrlrd.Errorf(ovrlrd.EINVALID, `Field "message" must be at most %d characters.`, ovrlrd.MaxMessage)
	case len(r.AllowedTools) > ovrlrd.MaxAllowedTools:
		return ovrlrd.Errorf(ovrlrd.EINVALID, `Field "allowedTools" may hold at most %d tools.`, ovrlrd.MaxAllowedTools)
	}
	for _, tool := range r.AllowedTools {
		if !toolAllowed(tool, allowList) {
			return ovrlrd.Errorf(ovrlrd.EINVALID, "Tool %q is not allowed on this server.", clip(tool, maxToolName))
		}
	}
	return nil
}

// toolAllowed reports whether a client may approve tool: a name the
// allow-list holds, or a pattern such as Bash(git log:*) of such a name, or
// a pattern the list holds verbatim. Names never contain whitespace: the CLI
// splits --allowedTools on it.
func toolAllowed(tool string, allowList []string) bool {
	if tool == "" || len(tool) > maxToolName || strings.ContainsAny(tool, " \t\r\n,") {
		return false
	}
	name, pattern, hasPattern := strings.Cut(tool, "(")
	if hasPattern && (!strings.HasSuffix(pattern, ")") || strings.ContainsAny(strings.TrimSuffix(pattern, ")"), "()")) {
		return false
	}
	for _, a := range allowList {
		if a == tool || (a == name && isName(name)) {
			return true
		}
	}
	return false
}

func isName(s string) bool {
	for _, c := range s {
		if !(c == '_' || c == '-' || c == '.' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')) {
			return false
		}
	}
	return s != ""
}

// opening is the message stored before the stream starts: the user's
// prompt, or, for an approval retry, a system note of what was approved
// (the prompt is not stored twice).
func opening(r ovrlrd.TurnRequest) ovrlrd.NewMessage {
	if len(r.AllowedTools) > 0 {
		return ovrlrd.NewMessage{Role: ovrlrd.RoleSystem, Content: approvedPrefix + strings.Join(r.AllowedTools, ", ")}
	}
	return ovrlrd.NewMessage{Role: ovrlrd.RoleUser, Content: r.Message}
}

// cliTools is the CLI's --allowedTools list: the approved tools, each once.
func cliTools(r ovrlrd.TurnRequest) []string {
	var out []string
	seen := map[string]bool{}
	for _, t := range r.AllowedTools {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
