package app_test

import (
	"crypto/rand"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/devkit/anthropicfake"
	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/devkit/gitserver"
	"github.com/ovrlrd/cloud/internal/devkit/kmslocal"
	"github.com/ovrlrd/cloud/internal/devkit/sandboxtest"
	"github.com/ovrlrd/cloud/internal/devkit/ssetest"
)

// projectStack is a stack with projects on: local-kms seals the tokens, a
// git server on loopback serves the repositories, and the real CLI works
// against a model that reads and edits README.md.
type projectStack struct {
	*stack
	git   *gitserver.Server
	model *anthropicfake.Server
	token string
}

// projectModel reads README.md ("read README.md"), or reads it and adds a
// line ("edit README.md"), with the CLI's own Read and Edit tools, in the
// working directory the CLI tells it.
func projectModel() anthropicfake.Script {
	wd := regexp.MustCompile(`[Ww]orking directory: ([^\s"\\]+)`)
	commands := anthropicfake.Commands()
	return func(r anthropicfake.Request) anthropicfake.Reply {
		if strings.HasPrefix(r.Prompt(), "Here is the start of a conversation") {
			return anthropicfake.Reply{Blocks: []anthropicfake.ReplyBlock{anthropicfake.Text("A project title")}}
		}
		if isCommand(r) {
			return commands(r)
		}
		m := wd.FindSubmatch(r.Raw)
		if m == nil {
			return anthropicfake.Reply{Blocks: []anthropicfake.ReplyBlock{anthropicfake.Text("No working directory.")}}
		}
		file := string(m[1]) + "/README.md"
		reads, edits := 0, 0
		for _, msg := range r.Messages {
			reads += strings.Count(string(msg.Content), `"name":"Read"`)
			edits += strings.Count(string(msg.Content), `"name":"Edit"`)
		}
		prompt := ""
		for _, msg := range r.Messages {
			if msg.Role == "user" && strings.Contains(msg.Text(), "README.md") {
				prompt = msg.Text()
			}
		}
		switch {
		case reads == 0:
			return anthropicfake.Reply{Blocks: []anthropicfake.ReplyBlock{anthropicfake.ToolUse("Read", map[string]string{"file_path": file})}}
		case strings.Contains(prompt, "edit README.md") && edits == 0:
			return anthropicfake.Reply{Blocks: []anthropicfake.ReplyBlock{anthropicfake.ToolUse("Edit", map[string]string{
				"file_path": file, "old_string": "Hello", "new_string": "Hello from the phone",
			})}}
		}
		return anthropicfake.Reply{Blocks: []anthropicfake.ReplyBlock{anthropicfake.Text("Done.")}}
	}
}

// isCommand reports whether the turn's first prompt was a command.
func isCommand(r anthropicfake.Request) bool {
	for _, m := range r.Messages {
		if m.Role == "user" && strings.Contains(m.Text(), anthropicfake.CommandPrefix) {
			return true
		}
	}
	return false
}

func newProjectStack(t *testing.T, overrides ...string) *projectStack {
	t.Helper()
	kms := kmslocal.Shared(t)
	token := "ghp_" + rand.Text()
	remember(token)
	git, err := gitserver.New(t.TempDir(), "octo", token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(git.Close)
	model := anthropicfake.New(projectModel())
	t.Cleanup(model.Close)
	env := append([]string{
		"CLAUDE_PATH", claudetest.RealCLI(t),
		"ANTHROPIC_BASE_URL", model.URL,
		"ANTHROPIC_API_KEY", "sk-ant-" + rand.Text(),
		"KMS_KEY_ID", kms.KeyID(),
		"KMS_ENDPOINT", kms.Endpoint(),
		"SSL_CERT_FILE", git.CertFile(),
		"CLAUDE_WORK_ROOT", filepath.Join(sandboxtest.Dir(t), "work"),
		"CLAUDE_CONFIG_ROOT", filepath.Join(sandboxtest.Dir(t), "claude"),
	}, overrides...)
	return &projectStack{stack: newStack(t, env...), git: git, model: model, token: token}
}

// addProject creates repository name with README.md and registers it.
func (p *projectStack) addProject(t *testing.T, tok, name string, extra string) map[string]any {
	t.Helper()
	if err := p.git.NewRepo(name, map[string]string{"README.md": "Hello\n", "src/main.go": "package main\n"}, "main"); err != nil {
		t.Fatal(err)
	}
	r := p.call(t, "POST", "/projects", `{"name":`+jsonString(name)+`,"repoUrl":`+jsonString(p.git.URL(name))+
		`,"token":`+jsonString(p.token)+extra+`}`, tok)
	if r.status != 201 {
		t.Fatalf("POST /projects: %d %s", r.status, r.body)
	}
	if strings.Contains(r.body, p.token) {
		t.Fatalf("the token came back: %s", r.body)
	}
	return r.json(t)["project"].(map[string]any)
}

// turn streams a turn and returns its events, which must end in complete.
func (p *projectStack) turn(t *testing.T, path, body, tok string) []ssetest.Event {
	t.Helper()
	r, evs := p.stream(t, path, body, tok)
	if r.status != 200 || len(evs) == 0 || evs[len(evs)-1].Type != "complete" {
		t.Fatalf("turn %s: %d %s %+v", body, r.status, r.body, evs)
	}
	return evs
}

// readResults are the tool results of README.md reads the model was sent.
func (p *projectStack) readResults() []string {
	var out []string
	for _, r := range p.model.ToolResults() {
		if strings.Contains(r, "Hello") {
			out = append(out, r)
		}
	}
	return out
}

func TestConversationOnAProject(t *testing.T) {
	p := newProjectStack(t)
	tok, _ := p.signIn(t, uniqueSub("project"), "")
	proj := p.addProject(t, tok, "app", `,"default":true`)
	if proj["branch"] != "main" || proj["hasToken"] != true || proj["default"] != true {
		t.Fatalf("project %v", proj)
	}
	id := proj["id"].(string)

	// The model reads the project's file and edits it.
	evs := p.turn(t, "/chat/stream", `{"message":"edit README.md","allowedTools":["Edit"],"projectId":`+jsonString(id)+`}`, tok)
	conv := evs[len(evs)-1].ConversationID
	if got := p.readResults(); len(got) != 1 || !strings.Contains(got[0], "Hello") {
		t.Fatalf("the model did not read the project's README: %q", got)
	}
	c, _, _ := appDetail(t, p.call(t, "GET", "/chat/"+conv, "", tok))
	branch, _ := c["branch"].(string)
	if c["projectId"] != id || !strings.HasPrefix(branch, "ovrlrd/") || c["workDir"] != "app" {
		t.Fatalf("conversation %v", c)
	}
	list := p.call(t, "GET", "/chat", "", tok).json(t)["conversations"].([]any)
	if first := list[0].(map[string]any); first["projectId"] != id || first["branch"] != branch {
		t.Fatalf("list %v", list)
	}

	// Its changes.
	r := p.call(t, "GET", "/chat/"+conv+"/changes", "", tok)
	var changes struct {
		Branch, Base, Diff string
		Files              []struct{ Path, Status string }
		Truncated          bool
	}
	if err := json.Unmarshal([]byte(r.body), &changes); r.status != 200 || err != nil {
		t.Fatalf("changes: %d %s", r.status, r.body)
	}
	if changes.Branch != branch || len(changes.Files) != 1 || changes.Files[0].Path != "README.md" ||
		changes.Files[0].Status != "modified" || !strings.Contains(changes.Diff, "+Hello from the phone") || changes.Truncated {
		t.Fatalf("changes %+v", changes)
	}

	// The push puts the branch beside an unchanged main.
	r = p.call(t, "POST", "/chat/"+conv+"/push", "", tok)
	pushed := r.json(t)
	if r.status != 200 || pushed["branch"] != branch || len(pushed["commit"].(string)) != 40 {
		t.Fatalf("push: %d %s", r.status, r.body)
	}
	if got, err := p.git.ReadFile("app", branch, "README.md"); err != nil || got != "Hello from the phone\n" {
		t.Fatalf("pushed README %q, %v", got, err)
	}
	if got, err := p.git.ReadFile("app", "main", "README.md"); err != nil || got != "Hello\n" {
		t.Fatalf("main's README %q, %v", got, err)
	}
	// Pushing again sends the same commit.
	if again := p.call(t, "POST", "/chat/"+conv+"/push", "", tok).json(t); again["commit"] != pushed["commit"] {
		t.Fatalf("second push %v, first %v", again, pushed)
	}

	// A second conversation, as the app of today starts one (no project
	// named: the default), starts from the project, not from the edits.
	evs = p.turn(t, "/chat/stream", `{"message":"read README.md"}`, tok)
	second := evs[len(evs)-1].ConversationID
	if got := p.readResults(); len(got) != 2 || strings.Contains(got[1], "from the phone") {
		t.Fatalf("the second conversation read %q", got)
	}
	c, _, _ = appDetail(t, p.call(t, "GET", "/chat/"+second, "", tok))
	if c["projectId"] != id || c["branch"] == branch {
		t.Fatalf("second conversation %v", c)
	}
	// And its next turn resumes the same folder.
	p.turn(t, "/chat/"+second+"/stream", `{"message":"read README.md again"}`, tok)
}
