package transcript

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

func parse(t *testing.T, lines []string) Session {
	t.Helper()
	s, err := Parse(strings.NewReader(join(lines)), testSession, 0)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return s
}

func TestParseSample(t *testing.T) {
	s := parse(t, sample())
	want := []Message{
		{Role: ovrlrd.RoleUser, Content: "List it"},
		{Role: ovrlrd.RoleAssistant, Content: "Let me look."},
		{Role: ovrlrd.RoleAssistant, Content: "[Tool Use: Bash]\n" + `{"command":"ls","description":"List"}`},
		{Role: ovrlrd.RoleUser, Content: "[Tool Result]\na.txt"},
		{Role: ovrlrd.RoleAssistant, Content: "It holds a.txt."},
	}
	stamps := []int{1, 3, 4, 5, 6}
	for i := range want {
		want[i].CreatedAt, _ = time.Parse(time.RFC3339Nano, stamp(stamps[i]))
	}
	if !slices.Equal(s.Messages, want) {
		t.Errorf("messages:\n%q\nwant\n%q", s.Messages, want)
	}
	if s.ID != testSession || s.Cwd != "/srv/project" || s.Title != "" {
		t.Errorf("session %q, cwd %q, title %q", s.ID, s.Cwd, s.Title)
	}
}

// TestParseSkips: what is not the conversation gives no message, and
// lines the CLI tolerates are read.
func TestParseSkips(t *testing.T) {
	lines := sample()
	meta := chainEntry(7, 6, "user", "<local-command-caveat>…</local-command-caveat>")
	meta["isMeta"] = true
	side := chainEntry(8, 7, "user", "a sub-agent's prompt")
	side["isSidechain"] = true
	compact := chainEntry(9, 7, "user", "This session is being continued…")
	compact["isCompactSummary"] = true
	lines = append(lines,
		"", "  \t",
		line(meta), line(side), line(compact),
		line(chainEntry(10, 9, "assistant", []any{map[string]any{"type": "thinking", "thinking": "hm", "signature": "x"}})),
		line(chainEntry(11, 10, "user", "   ")),
		lines[1], // the CLI has written an entry twice
		line(chainEntry(12, 0, "system", nil)),
		line(fields{"type": "progress", "uuid": uid(13), "parentUuid": uid(12), "sessionId": testSession}),
		line(chainEntry(14, 13, "user", []any{text("one"), map[string]any{"type": "image", "source": map[string]any{"type": "base64"}}, text("two")})),
		line(fields{"type": "some-future-entry", "sessionId": testSession, "anything": []int{1}}),
		line(fields{"type": "file-history-snapshot", "messageId": uid(1), "snapshot": map[string]any{}}),
		line(fields{"type": "mode", "mode": "normal", "sessionId": testSession}),
		line(fields{"type": "worktree-state", "worktreeSession": nil, "sessionId": testSession}),
		line(fields{"type": "bridge-session", "bridgeSessionId": "", "lastSequenceNum": 0, "sessionId": testSession}),
		line(fields{"type": "permission-mode", "permissionMode": "plan", "sessionId": testSession}),
		line(chainEntry(15, 14, "user", []any{map[string]any{"type": "tool_result", "tool_use_id": "t",
			"content": []any{text("out"), map[string]any{"type": "image", "source": map[string]any{}}}}})),
		line(chainEntry(16, 15, "user", []any{map[string]any{"type": "tool_result", "tool_use_id": "t"}})),
	)
	// CRLF line ends, and no newline after the last line.
	body := strings.ReplaceAll(join(lines), "\n", "\r\n")
	s, err := Parse(strings.NewReader(strings.TrimSuffix(body, "\r\n")), testSession, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range s.Messages[5:] {
		got = append(got, m.Content)
	}
	want := []string{"one\n\n[Image]\n\ntwo", "[Tool Result]\nout\n[Image]", "[Tool Result]"}
	if !slices.Equal(got, want) {
		t.Errorf("messages after the sample: %q, want %q", got, want)
	}
}

func TestParseTitle(t *testing.T) {
	summary := func(leaf, s string) string {
		return line(fields{"type": "summary", "summary": s, "leafUuid": leaf})
	}
	for _, tc := range []struct {
		name  string
		extra []string
		want  string
	}{
		{"summary", []string{summary(uid(6), "Listing  the\nfolder")}, "Listing the folder"},
		{"summary of another file", []string{summary(uid(99), "Elsewhere")}, ""},
		{"ai title", []string{summary(uid(6), "S"), line(fields{"type": "ai-title", "aiTitle": "AI", "sessionId": testSession})}, "AI"},
		{"custom title wins, the last", []string{
			line(fields{"type": "custom-title", "customTitle": "Mine", "sessionId": testSession}),
			line(fields{"type": "custom-title", "customTitle": "Mine again", "sessionId": testSession}),
			line(fields{"type": "ai-title", "aiTitle": "AI", "sessionId": testSession}),
		}, "Mine again"},
		{"long", []string{summary(uid(6), strings.Repeat("é", 100))}, strings.Repeat("é", 57) + "..."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parse(t, append(sample(), tc.extra...)).Title; got != tc.want {
				t.Errorf("title %q, want %q", got, tc.want)
			}
		})
	}
}

// TestParseErrors: each refusal names the first bad line, in the order the
// file holds them.
func TestParseErrors(t *testing.T) {
	with := func(n int, change func(f fields)) string {
		f := chainEntry(n, n-1, "user", "hi")
		change(f)
		return line(f)
	}
	block := func(role string, b map[string]any) string {
		return line(chainEntry(7, 6, role, []any{b}))
	}
	for _, tc := range []struct {
		name string
		line string // appended as line 9, after the sample
		want string // after "Line 9 of the transcript "
	}{
		{"not JSON", `{"type":`, "is not valid JSON"},
		{"not UTF-8", "{\"type\":\"x\",\"s\":\"\xff\"}", "is not valid JSON"},
		{"two values", `{"type":"x"} {}`, "is not valid JSON"},
		{"array", `[1]`, "is not a JSON object"},
		{"null", `null`, "is not a JSON object"},
		{"string", `"user"`, "is not a JSON object"},
		{"no type", `{"sessionId":"` + testSession + `"}`, "has no type"},
		{"type not a string", `{"type":1}`, "has no type"},
		{"type spelled otherwise", `{"Type":"x"}`, "has no type"},
		{"another session", with(7, func(f fields) { f["sessionId"] = uid(1) }), "belongs to another session"},
		{"another session elsewhere", line(fields{"type": "ai-title", "aiTitle": "x", "sessionId": uid(1)}), "belongs to another session"},
		{"session id not a string", with(7, func(f fields) { f["sessionId"] = 1 }), "has a sessionId that is not a string"},
		{"no session id", with(7, func(f fields) { delete(f, "sessionId") }), "has no sessionId"},
		{"uuid in capitals", with(7, func(f fields) { f["uuid"] = strings.ToUpper(testSession) }), "has a uuid that is not a UUID"},
		{"uuid a path", with(7, func(f fields) { f["uuid"] = "../../x" }), "has a uuid that is not a UUID"},
		{"uuid a number", with(7, func(f fields) { f["uuid"] = 7 }), "has a uuid that is not a UUID"},
		{"no uuid", with(7, func(f fields) { delete(f, "uuid") }), "has no uuid"},
		{"null uuid", with(7, func(f fields) { f["uuid"] = nil }), "has no uuid"},
		{"leaf not a uuid", line(fields{"type": "summary", "summary": "s", "leafUuid": "x"}), "has a leafUuid that is not a UUID"},
		{"no parentUuid", with(7, func(f fields) { delete(f, "parentUuid") }), "has no parentUuid"},
		{"unknown parent", with(7, func(f fields) { f["parentUuid"] = uid(40) }), "names a parentUuid that no earlier line holds"},
		{"itself as parent", with(7, func(f fields) { f["parentUuid"] = uid(7) }), "names a parentUuid that no earlier line holds"},
		{"no timestamp", with(7, func(f fields) { delete(f, "timestamp") }), "has no valid timestamp"},
		{"bad timestamp", with(7, func(f fields) { f["timestamp"] = "yesterday" }), "has no valid timestamp"},
		{"numeric timestamp", with(7, func(f fields) { f["timestamp"] = 1700000000 }), "has no valid timestamp"},
		{"flag a string", with(7, func(f fields) { f["isSidechain"] = "no" }), "has a flag that is not true or false"},
		{"cwd a number", with(7, func(f fields) { f["cwd"] = 1 }), "has a cwd that is not a string"},
		{"no message", with(7, func(f fields) { delete(f, "message") }), "has no message"},
		{"message a string", with(7, func(f fields) { f["message"] = "hi" }), "has no message"},
		{"role of the other", with(7, func(f fields) { f["message"] = map[string]any{"role": "assistant", "content": "hi"} }),
			"has a message whose role does not match its type"},
		{"system role", with(7, func(f fields) { f["message"] = map[string]any{"role": "system", "content": "hi"} }),
			"has a message whose role does not match its type"},
		{"no content", with(7, func(f fields) { f["message"] = map[string]any{"role": "user"} }), "has a message whose content is malformed"},
		{"content a number", with(7, func(f fields) { f["message"] = map[string]any{"role": "user", "content": 1} }),
			"has a message whose content is malformed"},
		{"assistant content a string", line(chainEntry(7, 6, "assistant", "hi")), "has a message whose content is malformed"},
		{"block not an object", line(chainEntry(7, 6, "user", []any{"hi"})), "has a message whose content is malformed"},
		{"block without type", block("user", map[string]any{"text": "hi"}), "has a message whose content is malformed"},
		{"text not a string", block("user", map[string]any{"type": "text", "text": 1}), "has a message whose content is malformed"},
		{"tool use from the user", block("user", map[string]any{"type": "tool_use", "id": "t", "name": "Bash", "input": map[string]any{}}),
			"has a message whose content is malformed"},
		{"thinking from the user", block("user", map[string]any{"type": "thinking", "thinking": "x"}), "has a message whose content is malformed"},
		{"tool result from the assistant", block("assistant", map[string]any{"type": "tool_result", "tool_use_id": "t"}),
			"has a message whose content is malformed"},
		{"tool use without name", block("assistant", map[string]any{"type": "tool_use", "id": "t", "input": map[string]any{}}),
			"has a message whose content is malformed"},
		{"tool use without id", block("assistant", map[string]any{"type": "tool_use", "name": "Bash", "input": map[string]any{}}),
			"has a message whose content is malformed"},
		{"tool use input a list", block("assistant", map[string]any{"type": "tool_use", "id": "t", "name": "Bash", "input": []int{}}),
			"has a message whose content is malformed"},
		{"tool use without input", block("assistant", map[string]any{"type": "tool_use", "id": "t", "name": "Bash"}),
			"has a message whose content is malformed"},
		{"tool result without id", block("user", map[string]any{"type": "tool_result", "content": "x"}),
			"has a message whose content is malformed"},
		{"tool result content a number", block("user", map[string]any{"type": "tool_result", "tool_use_id": "t", "content": 1}),
			"has a message whose content is malformed"},
		{"tool result text a number", block("user", map[string]any{"type": "tool_result", "tool_use_id": "t", "content": []any{map[string]any{"type": "text", "text": 1}}}),
			"has a message whose content is malformed"},
		{"tool result is_error a string", block("user", map[string]any{"type": "tool_result", "tool_use_id": "t", "is_error": "no"}),
			"has a message whose content is malformed"},
		{"image without source", block("user", map[string]any{"type": "image"}), "has a message whose content is malformed"},
		{"summary not a string", line(fields{"type": "summary", "summary": 1, "leafUuid": uid(6)}), "has a summary that is not a string"},
		{"title not a string", line(fields{"type": "custom-title", "customTitle": nil, "sessionId": testSession}), "has a title that is not a string"},
		{"coordinator mode", line(fields{"type": "mode", "mode": "coordinator", "sessionId": testSession}), "sets a mode the cloud does not run"},
		{"worktree", line(fields{"type": "worktree-state", "worktreeSession": map[string]any{"worktreePath": "/x"}, "sessionId": testSession}),
			"names a worktree, which the cloud does not have"},
		{"worktree absent", line(fields{"type": "worktree-state", "sessionId": testSession}), "names a worktree, which the cloud does not have"},
		{"relocated", line(fields{"type": "relocated", "relocatedCwd": "/x", "sessionId": testSession}), "names another working directory for the session"},
		{"agent", line(fields{"type": "agent-setting", "agentSetting": "x", "sessionId": testSession}), "selects an agent, which the cloud does not run"},
		{"isolation", line(fields{"type": "isolation-latch", "side": "x", "sessionId": testSession}), "sets an isolation the cloud does not run"},
		{"bridge", line(fields{"type": "bridge-session", "bridgeSessionId": "b", "sessionId": testSession}),
			"links a remote-control session, which the cloud does not run"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A later bad line must not be the one named.
			lines := append(sample(), tc.line, "not JSON either")
			_, err := Parse(strings.NewReader(join(lines)), testSession, 0)
			want := "Line 9 of the transcript " + tc.want + "."
			if ovrlrd.ErrorCode(err) != ovrlrd.EINVALID || ovrlrd.ErrorMessage(err) != want {
				t.Errorf("error %v, want %q", err, want)
			}
		})
	}
}

// TestParseLineNumbers: blank lines count; the first bad line is named.
func TestParseLineNumbers(t *testing.T) {
	lines := append([]string{"", sample()[1], "   "}, "{", "{")
	_, err := Parse(strings.NewReader(join(lines)), testSession, 0)
	if got := ovrlrd.ErrorMessage(err); got != "Line 4 of the transcript is not valid JSON." {
		t.Errorf("error %q", got)
	}
}

func TestParseSessionID(t *testing.T) {
	for _, id := range []string{"", strings.ToUpper(testSession), "../" + testSession, testSession + "\n", "0f8fad5b-d9cb-469f-a165-70867728950"} {
		_, err := Parse(strings.NewReader(join(sample())), id, 0)
		if ovrlrd.ErrorCode(err) != ovrlrd.EINVALID || ovrlrd.ErrorMessage(err) != "The session id is not a UUID." {
			t.Errorf("Parse(%q): %v", id, err)
		}
	}
}

func TestParseNoMessages(t *testing.T) {
	for name, lines := range map[string][]string{
		"empty":  nil,
		"blank":  {"", " "},
		"others": {sample()[0], line(chainEntry(1, 0, "system", nil)), line(fields{"type": "summary", "summary": "s", "leafUuid": uid(1)})},
	} {
		_, err := Parse(strings.NewReader(join(lines)), testSession, 0)
		if ovrlrd.ErrorCode(err) != ovrlrd.EINVALID || ovrlrd.ErrorMessage(err) != "The transcript holds no messages." {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestParseMaxMessages(t *testing.T) {
	if s, err := Parse(strings.NewReader(join(sample())), testSession, 5); err != nil || len(s.Messages) != 5 {
		t.Fatalf("5 messages under a limit of 5: %v", err)
	}
	_, err := Parse(strings.NewReader(join(sample())), testSession, 4)
	if ovrlrd.ErrorCode(err) != ovrlrd.ETOOLARGE || ovrlrd.ErrorMessage(err) != "The transcript holds more than 4 messages." {
		t.Errorf("over the limit: %v", err)
	}
	// The default applies to 0 and below.
	lines := []string{line(chainEntry(1, 0, "user", "hi"))}
	for n := 2; n <= DefaultMaxMessages+1; n++ {
		lines = append(lines, line(chainEntry(n, n-1, "user", "hi")))
	}
	for _, limit := range []int{0, -1} {
		_, err := Parse(strings.NewReader(join(lines)), testSession, limit)
		if ovrlrd.ErrorCode(err) != ovrlrd.ETOOLARGE {
			t.Errorf("%d+1 messages with the limit %d: %v", DefaultMaxMessages, limit, err)
		}
		if _, err := Parse(strings.NewReader(join(lines[:DefaultMaxMessages])), testSession, limit); err != nil {
			t.Errorf("%d messages with the limit %d: %v", DefaultMaxMessages, limit, err)
		}
	}
}

// TestParseLineLimit: a line of MaxLineBytes is read, one byte more is
// refused by its number, and so is a last line without a newline.
func TestParseLineLimit(t *testing.T) {
	empty := line(chainEntry(7, 6, "user", ""))
	i := strings.Index(empty, `"content":""`) + len(`"content":"`)
	longest := empty[:i] + strings.Repeat("x", MaxLineBytes-len(empty)) + empty[i:]
	if _, err := Parse(strings.NewReader(join(append(sample(), longest))), testSession, 0); err != nil || len(longest) != MaxLineBytes {
		t.Errorf("a line of MaxLineBytes (%d): %v", len(longest), err)
	}
	tooLong := longest[:i] + "x" + longest[i:]
	want := "Line 9 of the transcript is longer than 8 MiB."
	for _, body := range []string{join(append(sample(), tooLong)), join(sample()) + tooLong} {
		_, err := Parse(strings.NewReader(body), testSession, 0)
		if ovrlrd.ErrorCode(err) != ovrlrd.EINVALID || ovrlrd.ErrorMessage(err) != want {
			t.Errorf("a line of MaxLineBytes+1: %v", err)
		}
	}
}

// blanks is an endless transcript of blank lines, each of 4 KiB.
type blanks struct{}

func (blanks) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
		if i%4096 == 4095 {
			p[i] = '\n'
		}
	}
	return len(p), nil
}

func TestParseMaxBytes(t *testing.T) {
	_, err := Parse(io.MultiReader(strings.NewReader(join(sample())), blanks{}), testSession, 0)
	if ovrlrd.ErrorCode(err) != ovrlrd.ETOOLARGE || ovrlrd.ErrorMessage(err) != "The transcript is larger than 100 MB." {
		t.Errorf("an endless transcript: %v", err)
	}
}

func TestParseReadError(t *testing.T) {
	broken := errors.New("connection reset")
	_, err := Parse(io.MultiReader(strings.NewReader(join(sample())), iotest.ErrReader(broken)), testSession, 0)
	if !errors.Is(err, broken) || ovrlrd.ErrorCode(err) != ovrlrd.EINTERNAL {
		t.Errorf("error %v, want the reader's, internal", err)
	}
}
