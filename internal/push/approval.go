package push

import (
	"cmp"
	"context"
	"encoding/json"
	"net/url"
	"path"
	"strings"
	"time"
	"unicode"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// ApprovalNeeded asks every device of a.UserID, in parallel, within ctx,
// to allow a's tool call. Every push of one request carries the same
// collapse id, so the phone shows a repeated push once, and expires with
// the request, so a phone that comes online later is not asked what no
// turn waits for any more. A request already past its time is not pushed.
func (n *Notifier) ApprovalNeeded(ctx context.Context, a ovrlrd.Approval) {
	// A zero ExpiresAt counts as expired too: without an expiration APNs
	// would keep the question for an offline phone for as long as it keeps
	// anything.
	if a.Expired(time.Now()) {
		n.log.InfoContext(ctx, "push: approval not pushed, it has expired")
		return
	}
	n.fanOut(ctx, a.UserID, notice{payload: ApprovalPayload(a), collapse: collapseID(a.ID), expires: a.ExpiresAt.Time()})
}

// ApprovalPayload is the notification that asks for an approval: what the
// tool would do, as a short summary fit for a lock screen (see summary),
// the category under which the app offers its actions, and the ids the app
// answers with. Nothing else of the tool's input leaves the service; the
// app fetches the request itself to show it whole.
func ApprovalPayload(a ovrlrd.Approval) []byte {
	b, _ := json.Marshal(map[string]any{ // maps of strings always encode
		"aps": map[string]any{
			"alert":     map[string]string{"title": "Claude needs your approval", "body": summary(a)},
			"sound":     "default",
			"thread-id": a.ConversationID,
			"category":  "TOOL_APPROVAL",
		},
		"conversationId": a.ConversationID,
		"requestId":      a.ID,
		"type":           "approval_needed",
	})
	return b
}

// Limits of a summary's parts, in characters: a lock screen shows a line
// or two, and the payload stays far below APNs's 4 KB whatever the input.
const (
	toolNameMax = 40
	detailMax   = 60
	programMax  = 24
)

// summary says which tool Claude wants to use and, for the tools where one
// part of the input says what the call does, that part: a command's
// program and subcommand, a file's base name, a URL's host.
//
// What it shows of the input is allowed, never masked: only words made of
// the few characters a program, a subcommand, a file name or a host name
// is made of pass; any other is left out, as " …" after a command's
// program, or the summary names the tool alone. A lock
// screen is no place to guess what a secret looks like: a password is as
// short and as plain as "hunter2", stands wherever a program takes it
// (curl -u admin:hunter2, mysql -phunter2, sshpass -p hunter2), and no
// list of patterns knows every program. The push is a heads-up; the app
// shows the request whole.
func summary(a ovrlrd.Approval) string {
	name := cmp.Or(clip(strings.TrimSpace(clean(a.ToolName)), toolNameMax), "a tool")
	what := toolDetail(a.ToolName, a.ToolInput)
	switch {
	case what == "":
		return "Claude wants to use " + name
	case a.ToolName == "Bash":
		return "Claude wants to run " + name + ": " + what
	}
	return "Claude wants to use " + name + ": " + what
}

// toolInput is what a summary may read of a tool's input.
type toolInput struct {
	Command      string `json:"command"`
	FilePath     string `json:"file_path"`
	NotebookPath string `json:"notebook_path"`
	URL          string `json:"url"`
}

// toolDetail is the part of the input a summary shows; empty when there
// is none or when it is not plainly harmless.
func toolDetail(tool string, input json.RawMessage) string {
	var in toolInput
	// A field that is missing or not a string stays empty, and the summary
	// then names the tool alone: the input is Claude's, not checked here.
	_ = json.Unmarshal(input, &in)
	file := cmp.Or(in.FilePath, in.NotebookPath)
	switch {
	case tool == "Bash":
		return commandDetail(in.Command)
	case tool == "WebFetch":
		if host := hostOf(in.URL); only(host, isHostChar) {
			return clip(host, detailMax)
		}
	case file != "":
		// The directories may name a customer, a user, a secret project.
		if base := strings.TrimSpace(path.Base(file)); len(base) <= detailMax && only(base, isFileChar) {
			return base
		}
	}
	return ""
}

// commandDetail is the program a command runs (a path's base name) and,
// for a program that takes one, a word that looks like a subcommand ("npm
// test", "git push"), then " …" when anything else follows, on its first line or
// after it: a command that goes on must not look complete on the screen
// where it is allowed. Its arguments, options and redirections are never
// shown, and a command that starts with anything but a plain program name
// or path (FOO=bar npm test) shows nothing. The words are not cleaned: a
// control or format character fails them rather than being dropped, which
// would show a word other than the one run, or join a secret's pieces.
func commandDetail(cmd string) string {
	line, more := firstLine(cmd)
	words := strings.Fields(line)
	// A path only if all of it is made of a path's plain characters: the
	// base name of AWS_KEY=abc/def is no program, and a part of a secret.
	if len(words) == 0 || !only(words[0], func(c byte) bool { return isProgramChar(c) || c == '/' }) {
		return ""
	}
	prog := path.Base(words[0])
	if len(prog) > programMax || !only(prog, isProgramChar) {
		return ""
	}
	shown := 1
	if len(words) > 1 && takesSubcommand[prog] && isSubcommand(words[1]) {
		prog, shown = prog+" "+words[1], 2
	}
	if more || len(words) > shown {
		return prog + " …"
	}
	return prog
}

// firstLine is s's first non-blank line, and whether more followed it.
func firstLine(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return s[:i], true
	}
	return s, false
}

// hostOf is the host name of the URL raw, without credentials, port, path
// or query; empty when raw is no URL with a host.
func hostOf(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// only says whether s is not empty and every byte of it is ok; the
// characters allowed are all ASCII, so a byte that is not one fails.
func only(s string, ok func(c byte) bool) bool {
	for i := range len(s) {
		if !ok(s[i]) {
			return false
		}
	}
	return s != ""
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// isProgramChar: a program's name, [A-Za-z0-9._+-].
func isProgramChar(c byte) bool { return isAlnum(c) || strings.IndexByte("._+-", c) >= 0 }

// isFileChar: a file's base name, [A-Za-z0-9._ -].
func isFileChar(c byte) bool { return isAlnum(c) || strings.IndexByte("._ -", c) >= 0 }

// isHostChar: a host name, [A-Za-z0-9.-].
func isHostChar(c byte) bool { return isAlnum(c) || c == '.' || c == '-' }

// takesSubcommand are programs whose first argument names what they do:
// of any other (echo, sudo, printf), a plain word may be a password.
var takesSubcommand = map[string]bool{
	"git": true, "npm": true, "pnpm": true, "yarn": true, "go": true, "cargo": true, "docker": true,
	"kubectl": true, "make": true, "terraform": true, "gh": true, "brew": true, "swift": true,
	"xcodebuild": true, "pod": true, "bundle": true, "rails": true, "mix": true, "dotnet": true,
	"gradle": true, "mvn": true, "pip": true, "uv": true, "poetry": true, "deno": true, "bun": true,
}

// isSubcommand says whether w looks like a subcommand: ^[a-z][a-z-]{0,15}$
// (test, push, run-script). An option, a path, a digit or a capital letter
// is an argument, and may be a secret.
func isSubcommand(w string) bool {
	return len(w) <= 16 && w != "" && 'a' <= w[0] && w[0] <= 'z' &&
		only(w, func(c byte) bool { return 'a' <= c && c <= 'z' || c == '-' })
}

// clean turns whitespace into plain spaces and drops control and format
// characters: escape sequences, line breaks, and bidirectional overrides
// that would show a tool name other than the one asked for.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case unicode.IsSpace(r):
			return ' '
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			return -1
		}
		return r
	}, s)
}
