package app_test

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/ssetest"
)

// What POST /projects refuses, each with a clear 400 before anything is
// kept: a wrong token, an address the guard refuses, a missing repository,
// and URLs that are not plain https.
func TestProjectCreationRefusals(t *testing.T) {
	p := newProjectStack(t)
	tok, _ := p.signIn(t, uniqueSub("project-refusals"), "")
	if err := p.git.NewRepo("lib", map[string]string{"README.md": "Hello\n"}, "main"); err != nil {
		t.Fatal(err)
	}
	wrong := "ghp_wrong_" + rand.Text()
	remember(wrong)
	for _, c := range []struct{ body, want string }{
		{`{"name":"lib","repoUrl":` + jsonString(p.git.URL("lib")) + `,"token":` + jsonString(wrong) + `}`, "The token cannot read this repository."},
		{`{"name":"lib","repoUrl":` + jsonString(p.git.URL("lib")) + `}`, "The token cannot read this repository."},
		{`{"name":"lib","repoUrl":` + jsonString(p.git.URL("nope")) + `,"token":` + jsonString(p.token) + `}`, "The repository was not found."},
		{`{"name":"lib","repoUrl":` + jsonString(p.git.URL("lib")) + `,"branch":"dev","token":` + jsonString(p.token) + `}`, `The repository has no branch "dev".`},
		// The server-side request forgery guard: private, link-local (the
		// metadata service) and NAT64-embedded addresses, even in the local
		// stage, which opens loopback only.
		{`{"name":"lib","repoUrl":"https://10.0.0.1/x.git","token":"t"}`, "The repository's address is not allowed."},
		{`{"name":"lib","repoUrl":"https://169.254.169.254/latest.git","token":"t"}`, "The repository's address is not allowed."},
		{`{"name":"lib","repoUrl":"https://[64:ff9b::a9fe:a9fe]/x.git","token":"t"}`, "The repository's address is not allowed."},
		{`{"name":"lib","repoUrl":"http://example.com/x.git","token":"t"}`, "The repository URL must start with https://."},
		{`{"name":"lib","repoUrl":"https://user:pw@example.com/x.git"}`, "The repository URL must not contain a user name or password; the token is given separately."},
		{`{"name":"a/b","repoUrl":` + jsonString(p.git.URL("lib")) + `}`, "A project name must be 1 to 100 characters, without a slash."},
		{`{"repoUrl":"https://example.com/x.git"}`, `Field "name" is required.`},
	} {
		r := p.call(t, "POST", "/projects", c.body, tok)
		if r.status != 400 || r.json(t)["error"] != c.want {
			t.Errorf("%s: %d %s, want 400 %q", c.body, r.status, r.body, c.want)
		}
	}
	if r := p.call(t, "GET", "/projects", "", tok); r.status != 200 || r.body != `{"projects":[]}` {
		t.Fatalf("after refusals: %d %s", r.status, r.body)
	}
}

// A project id or name that is missing, or another user's, gets the same
// 404 on every route; a conversation never changes project.
func TestProjectOfAnotherUser(t *testing.T) {
	p := newProjectStack(t)
	alice, _ := p.signIn(t, uniqueSub("project-alice"), "")
	mallory, _ := p.signIn(t, uniqueSub("project-mallory"), "")
	id := p.addProject(t, alice, "secret-app", "")["id"].(string)
	missing := "00000000-0000-4000-8000-000000000000"

	var first string
	for _, c := range []struct{ method, path, body string }{
		{"PATCH", "/projects/" + id, `{"name":"mine"}`},
		{"PATCH", "/projects/" + missing, `{"name":"mine"}`},
		{"DELETE", "/projects/" + id, ""},
		{"DELETE", "/projects/not-an-id", ""},
		{"POST", "/chat/stream", `{"message":"read README.md","projectId":` + jsonString(id) + `}`},
		{"POST", "/chat", `{"message":"read README.md","projectId":` + jsonString(missing) + `}`},
		{"POST", "/chat/stream", `{"message":"read README.md","workDir":"secret-app"}`},
		{"POST", "/chat/directories/secret-app/label", `{"label":"x"}`},
		{"DELETE", "/chat/directories/secret-app", ""},
	} {
		r := p.call(t, c.method, c.path, c.body, mallory)
		if r.status != 404 {
			t.Fatalf("%s %s: %d %s", c.method, c.path, r.status, r.body)
		}
		if first == "" {
			first = r.body
		}
		if r.body != first {
			t.Fatalf("%s %s answered %s, others %s", c.method, c.path, r.body, first)
		}
	}
	if first != `{"error":"Project not found."}` {
		t.Fatalf("404 body %s", first)
	}
	if r := p.call(t, "GET", "/projects", "", alice); !strings.Contains(r.body, `"name":"secret-app"`) {
		t.Fatalf("alice's projects after mallory: %s", r.body)
	}

	// A conversation's project is fixed.
	other := p.addProject(t, alice, "other-app", "")["id"].(string)
	evs := p.turn(t, "/chat/stream", `{"message":"read README.md","projectId":`+jsonString(id)+`}`, alice)
	conv := evs[len(evs)-1].ConversationID
	for _, path := range []string{"/chat/" + conv, "/chat/" + conv + "/stream"} {
		r := p.call(t, "POST", path, `{"message":"read README.md","projectId":`+jsonString(other)+`}`, alice)
		if r.status != 409 || r.json(t)["error"] != "This conversation works on another project." {
			t.Fatalf("%s with another project: %d %s", path, r.status, r.body)
		}
	}
	// A conversation without one cannot take one later.
	plain := p.turn(t, "/chat/stream", `{"message":"hello"}`, alice)
	r := p.call(t, "POST", "/chat/"+plain[len(plain)-1].ConversationID+"/stream", `{"message":"read README.md","projectId":`+jsonString(id)+`}`, alice)
	if r.status != 409 {
		t.Fatalf("a project for a conversation without one: %d %s", r.status, r.body)
	}
}

// A token revoked after the project was added ends the conversation's first
// turn before the CLI starts, with an error that says so.
func TestRevokedTokenEndsTheTurnBeforeTheCLI(t *testing.T) {
	p := newProjectStack(t)
	tok, _ := p.signIn(t, uniqueSub("project-revoked"), "")
	id := p.addProject(t, tok, "app", "")["id"].(string)
	p.git.SetToken("ghp_rotated_" + rand.Text())
	before := len(p.model.Calls())
	r, evs := p.stream(t, "/chat/stream", `{"message":"read README.md","projectId":`+jsonString(id)+`}`, tok)
	if r.status != 200 || len(evs) == 0 {
		t.Fatalf("turn: %d %s", r.status, r.body)
	}
	last := evs[len(evs)-1]
	if last.Type != "error" || last.Message != "The token cannot read this repository." {
		t.Fatalf("events %+v", evs)
	}
	if got := len(p.model.Calls()); got != before {
		t.Fatalf("the CLI ran: %d model calls", got-before)
	}
	// A new token is checked before it is kept.
	r = p.call(t, "PATCH", "/projects/"+id, `{"token":"ghp_still_wrong"}`, tok)
	if r.status != 400 {
		t.Fatalf("PATCH with a wrong token: %d %s", r.status, r.body)
	}
}

// The size bound: the pack a clone receives (PROJECT_MAX_MB), and the
// files it would check out (the conversation's folder cap), each refused
// before the CLI starts.
func TestProjectSizeBounds(t *testing.T) {
	p := newProjectStack(t, "PROJECT_MAX_MB", "1", "WORKSPACE_MAX_MB", "2")
	tok, _ := p.signIn(t, uniqueSub("project-size"), "")
	// Random bytes do not compress: a pack above 1 MB.
	big := make([]byte, 3<<20)
	rand.Read(big)
	if err := p.git.NewRepo("big", map[string]string{"blob.bin": string(big)}, "main"); err != nil {
		t.Fatal(err)
	}
	// One repeated byte compresses to almost nothing: a small pack whose
	// files are above the folder's 2 MB.
	if err := p.git.NewRepo("bomb", map[string]string{"zeros.txt": strings.Repeat("0", 5<<20)}, "main"); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"big":  "The repository is larger than the limit of 1 MB.",
		"bomb": "The repository's files are larger than the limit of 2 MB.",
	} {
		r := p.call(t, "POST", "/projects", `{"name":`+jsonString(name)+`,"repoUrl":`+jsonString(p.git.URL(name))+`,"token":`+jsonString(p.token)+`}`, tok)
		if r.status != 201 {
			t.Fatalf("%s: %d %s", name, r.status, r.body)
		}
		id := r.json(t)["project"].(map[string]any)["id"].(string)
		_, evs := p.stream(t, "/chat/stream", `{"message":"read README.md","projectId":`+jsonString(id)+`}`, tok)
		if last := evs[len(evs)-1]; last.Type != "error" || last.Message != want {
			t.Errorf("%s: events %+v, want %q", name, evs, want)
		}
	}
}

// A push is refused while a turn holds the conversation.
func TestPushWhileATurnRuns(t *testing.T) {
	p := newProjectStack(t)
	tok, _ := p.signIn(t, uniqueSub("project-busy"), "")
	id := p.addProject(t, tok, "app", "")["id"].(string)
	evs := p.turn(t, "/chat/stream", `{"message":"edit README.md","allowedTools":["Edit"],"projectId":`+jsonString(id)+`}`, tok)
	conv := evs[len(evs)-1].ConversationID
	ctx := context.Background()
	if err := p.app.Store.AcquireRun(ctx, conv, "a-turn", time.Minute); err != nil {
		t.Fatal(err)
	}
	r := p.call(t, "POST", "/chat/"+conv+"/push", "", tok)
	if r.status != 409 {
		t.Fatalf("push during a turn: %d %s", r.status, r.body)
	}
	if err := p.app.Store.ReleaseRun(ctx, conv, "a-turn"); err != nil {
		t.Fatal(err)
	}
	if r := p.call(t, "POST", "/chat/"+conv+"/push", "", tok); r.status != 200 {
		t.Fatalf("push after the turn: %d %s", r.status, r.body)
	}
	// A conversation without a project has nothing to show or push.
	plain := p.turn(t, "/chat/stream", `{"message":"hello"}`, tok)
	if r := p.call(t, "GET", "/chat/"+plain[len(plain)-1].ConversationID+"/changes", "", tok); r.status != 404 {
		t.Fatalf("changes without a project: %d %s", r.status, r.body)
	}
}

// The directory picker's routes, on projects.
func TestDirectories(t *testing.T) {
	p := newProjectStack(t)
	tok, _ := p.signIn(t, uniqueSub("project-dirs"), "")
	p.addProject(t, tok, "app", "")
	p.addProject(t, tok, "lib", "")
	evs := p.turn(t, "/chat/stream", `{"message":"read README.md","workDir":"lib"}`, tok)
	conv := evs[len(evs)-1].ConversationID
	dirs := p.call(t, "GET", "/chat/directories", "", tok).json(t)["directories"].([]any)
	if len(dirs) != 2 {
		t.Fatalf("directories %v", dirs)
	}
	lib, app := dirs[0].(map[string]any), dirs[1].(map[string]any)
	if lib["path"] != "lib" || lib["accessCount"] != float64(1) || lib["lastUsed"] == nil || app["path"] != "app" || app["lastUsed"] != nil {
		t.Fatalf("directories %v", dirs)
	}
	if r := p.call(t, "POST", "/chat/directories/lib/label", `{"label":"The library"}`, tok); r.status != 200 {
		t.Fatalf("label: %d %s", r.status, r.body)
	}
	if r := p.call(t, "DELETE", "/chat/directories/app", "", tok); r.status != 200 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	// A conversation's workDir names its project after a rename too.
	libID := lib["projectId"].(string)
	if r := p.call(t, "PATCH", "/projects/"+libID, `{"name":"library"}`, tok); r.status != 200 {
		t.Fatalf("rename: %d %s", r.status, r.body)
	}
	p.turn(t, "/chat/"+conv+"/stream", `{"message":"read README.md","workDir":"lib"}`, tok)
	c, _, _ := appDetail(t, p.call(t, "GET", "/chat/"+conv, "", tok))
	if c["projectId"] != libID || c["workDir"] != "lib" {
		t.Fatalf("conversation after the rename %v", c)
	}
	dirs = p.call(t, "GET", "/chat/directories", "", tok).json(t)["directories"].([]any)
	if len(dirs) != 1 || dirs[0].(map[string]any)["label"] != "The library" || dirs[0].(map[string]any)["path"] != "library" {
		t.Fatalf("directories %v", dirs)
	}
}

// A clone under way renews the turn's lease and sees a cancel: the turn
// ends as cancelled, before the CLI, and the conversation takes the next
// turn.
func TestCancelWhileTheProjectIsCloned(t *testing.T) {
	p := newProjectStack(t)
	tok, _ := p.signIn(t, uniqueSub("project-cancel"), "")
	id := p.addProject(t, tok, "app", "")["id"].(string)
	arrived, release := p.git.Hold()
	defer release()
	type result struct {
		r   response
		evs []ssetest.Event
	}
	done := make(chan result, 1)
	go func() {
		r, evs := p.stream(t, "/chat/stream", `{"message":"read README.md","projectId":`+jsonString(id)+`}`, tok)
		done <- result{r, evs}
	}()
	<-arrived
	list := p.call(t, "GET", "/chat", "", tok).json(t)["conversations"].([]any)
	conv := list[0].(map[string]any)["id"].(string)
	if r := p.call(t, "POST", "/chat/"+conv+"/cancel", "", tok); r.status != 200 {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	got := <-done
	release()
	if c, _, _ := appDetail(t, p.call(t, "GET", "/chat/"+conv, "", tok)); c["projectId"] != id {
		t.Fatalf("the cancelled first turn left no project: %v", c)
	}
	if last := got.evs[len(got.evs)-1]; last.Type != "error" || last.Message != "Cancelled" {
		t.Fatalf("events %+v", got.evs)
	}
	if n := len(p.model.Calls()); n != 0 {
		t.Fatalf("the CLI ran: %d model calls", n)
	}
	p.turn(t, "/chat/"+conv+"/stream", `{"message":"read README.md"}`, tok)
}
