package app_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/anthropicfake"
	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/devkit/sandboxtest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// importBody is a POST /chat/import body with the transcript inline.
func importBody(id string, data []byte, extra string) string {
	return `{"sessionId":` + jsonString(id) + `,"transcript":` + jsonString(string(data)) + extra + `}`
}

// deskTimes are the times of the transcript's user and assistant entries,
// in the file's order.
func deskTimes(t *testing.T, data []byte) []time.Time {
	t.Helper()
	var out []time.Time
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 8<<20)
	for sc.Scan() {
		var e struct {
			Type      string    `json:"type"`
			Timestamp time.Time `json:"timestamp"`
		}
		if json.Unmarshal(sc.Bytes(), &e) == nil && (e.Type == "user" || e.Type == "assistant") {
			out = append(out, e.Timestamp)
		}
	}
	return out
}

// A session from the desk becomes a conversation: its messages show in the
// app in their order with the desk's times, and the next turn resumes it,
// the model receiving what was said at the desk.
func TestImportedSessionResumes(t *testing.T) {
	model := anthropicfake.New(anthropicfake.Commands())
	t.Cleanup(model.Close)
	work := filepath.Join(sandboxtest.Dir(t), "work")
	s := newStack(t, "CLAUDE_PATH", claudetest.RealCLI(t), "ANTHROPIC_BASE_URL", model.URL, "ANTHROPIC_API_KEY", "sk-ant-import",
		"CLAUDE_WORK_ROOT", work, "CLAUDE_CONFIG_ROOT", filepath.Join(sandboxtest.Dir(t), "claude"))
	id, data := claudetest.DeskSession(t, model.URL, anthropicfake.CommandPrefix+"echo desk-marker")
	tok, _ := s.signIn(t, uniqueSub("import"), "")

	r := s.call(t, "POST", "/chat/import", importBody(id, data, `,"title":"From the desk"`), tok)
	var got ovrlrd.Imported
	if err := json.Unmarshal([]byte(r.body), &got); r.status != 200 || err != nil {
		t.Fatalf("POST /chat/import: %d %s", r.status, r.body)
	}
	if got.MessageCount < 4 || got.Title == nil || *got.Title != "From the desk" {
		t.Fatalf("imported %s", r.body)
	}
	c, msgs, _ := appDetail(t, s.call(t, "GET", "/chat/"+got.ConversationID, "", tok))
	if c["claudeSessionId"] != id || c["title"] != "From the desk" || len(msgs) != got.MessageCount {
		t.Fatalf("conversation %v, %d messages", c, len(msgs))
	}
	// The prompt, the tool call, its result, the answer: in that order.
	var shape []string
	for _, m := range msgs {
		content := m["content"].(string)
		switch {
		case strings.HasPrefix(content, "[Tool Use: Bash]"):
			shape = append(shape, "use")
		case strings.HasPrefix(content, "[Tool Result]"):
			shape = append(shape, "result")
		default:
			shape = append(shape, m["role"].(string))
		}
	}
	if s := strings.Join(shape, " "); !strings.HasPrefix(s, "user use result assistant") ||
		!strings.Contains(msgs[0]["content"].(string), "desk-marker") {
		t.Fatalf("messages: %s", s)
	}
	// The desk's times, to the millisecond, in order.
	times := deskTimes(t, data)
	first, _ := time.Parse(time.RFC3339, msgs[0]["createdAt"].(string))
	last, _ := time.Parse(time.RFC3339, msgs[len(msgs)-1]["createdAt"].(string))
	if !first.Equal(times[0].Truncate(time.Millisecond)) || !last.Equal(times[len(times)-1].Truncate(time.Millisecond)) {
		t.Fatalf("times %v .. %v, desk %v .. %v", first, last, times[0], times[len(times)-1])
	}
	for i := 1; i < len(msgs); i++ {
		if msgs[i]["createdAt"].(string) < msgs[i-1]["createdAt"].(string) {
			t.Fatalf("message %d is older than the one before it", i)
		}
	}

	before := len(model.Requests())
	r, evs := s.stream(t, "/chat/"+got.ConversationID+"/stream", `{"message":"and now from the phone"}`, tok)
	if r.status != 200 || evs[len(evs)-1].Type != "complete" {
		t.Fatalf("the resumed turn: %d %s %+v", r.status, r.body, evs)
	}
	var resumed string
	for _, req := range model.Requests()[before:] {
		if strings.Contains(string(req.Raw), "and now from the phone") {
			resumed = string(req.Raw)
			break
		}
	}
	if !strings.Contains(resumed, "desk-marker") {
		t.Fatal("the model did not receive the desk's messages in the resumed turn's first request")
	}

	// A second import of the session names the first conversation.
	r = s.call(t, "POST", "/chat/import", importBody(id, data, ""), tok)
	if r.status != http.StatusConflict || !strings.Contains(r.body, got.ConversationID) {
		t.Fatalf("second import: %d %s", r.status, r.body)
	}
}

// An import on a project: the conversation is the project's from the
// start, and its first turn from the phone checks the project out, then
// resumes the desk's session in it.
func TestImportOnAProject(t *testing.T) {
	p := newProjectStack(t)
	tok, _ := p.signIn(t, uniqueSub("import-project"), "")
	proj := p.addProject(t, tok, "desk-app", "")
	id, data := claudetest.DeskSession(t, p.model.URL, anthropicfake.CommandPrefix+"echo desk-marker")

	r := p.call(t, "POST", "/chat/import", importBody(id, data, `,"projectId":`+jsonString(proj["id"].(string))), tok)
	if r.status != 200 {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	conv := r.json(t)["conversationId"].(string)
	c, _, _ := appDetail(t, p.call(t, "GET", "/chat/"+conv, "", tok))
	if c["projectId"] != proj["id"] || c["workDir"] != "desk-app" || !strings.HasPrefix(c["branch"].(string), "ovrlrd/") {
		t.Fatalf("conversation %v", c)
	}

	before := len(p.model.Requests())
	p.turn(t, "/chat/"+conv+"/stream", `{"message":"`+anthropicfake.CommandPrefix+`cat README.md","allowedTools":["Bash"]}`, tok)
	if got := p.readResults(); len(got) != 1 {
		t.Fatalf("the turn did not run in the project's checkout: %q", got)
	}
	var resumed bool
	for _, req := range p.model.Requests()[before:] {
		resumed = resumed || strings.Contains(string(req.Raw), "desk-marker")
	}
	if !resumed {
		t.Fatal("the turn in the checkout did not resume the desk's session")
	}
	r = p.call(t, "GET", "/chat/"+conv+"/changes", "", tok)
	var changes struct{ Branch, Base string }
	if err := json.Unmarshal([]byte(r.body), &changes); r.status != 200 || err != nil || len(changes.Base) != 40 || changes.Branch != c["branch"] {
		t.Fatalf("changes: %d %s", r.status, r.body)
	}

	// Another user's project, and a missing one, are the same 404.
	other, _ := p.signIn(t, uniqueSub("import-project-other"), "")
	theirs := p.addProject(t, other, "their-app", "")
	id2, data2 := claudetest.DeskSession(t, p.model.URL, anthropicfake.CommandPrefix+"echo second-desk")
	for _, project := range []string{theirs["id"].(string), "2b0c4f1e-5d6a-4b7c-8d9e-0f1a2b3c4d5e"} {
		if r := p.call(t, "POST", "/chat/import", importBody(id2, data2, `,"projectId":`+jsonString(project)), tok); r.status != 404 || r.body != `{"error":"Project not found."}` {
			t.Fatalf("import on project %s: %d %s", project, r.status, r.body)
		}
	}
	// A project deleted before the conversation's first turn leaves the
	// conversation to go on without it.
	gone := p.addProject(t, tok, "gone-app", "")
	r = p.call(t, "POST", "/chat/import", importBody(id2, data2, `,"projectId":`+jsonString(gone["id"].(string))), tok)
	if r.status != 200 {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	if d := p.call(t, "DELETE", "/projects/"+gone["id"].(string), "", tok); d.status != 200 {
		t.Fatalf("delete project: %d %s", d.status, d.body)
	}
	p.turn(t, "/chat/"+r.json(t)["conversationId"].(string)+"/stream", `{"message":"and without the project"}`, tok)
}
