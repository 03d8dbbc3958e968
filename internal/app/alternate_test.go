package app_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"path"
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/devkit/anthropicfake"
	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/devkit/sandboxtest"
)

// Three turns of one conversation, on two Lambda environments in turn (A,
// B, A), with the real CLI: each turn resumes the one before it, wherever
// that ran, and finds its files. After each turn the bucket holds exactly
// one version of the conversation's folders, the one the conversation
// names, and it has that turn's files. Before versions, turn 3 on A could
// resume A's own older copy and overwrite turn 2's save.
func TestTurnsAlternatingBetweenEnvironments(t *testing.T) {
	model := anthropicfake.New(anthropicfake.Commands())
	t.Cleanup(model.Close)
	// Lambda environments have the same paths; the CLI finds a transcript
	// by its working folder's path.
	shared := []string{
		"CLAUDE_WORK_ROOT", sandboxtest.Dir(t),
		"CLAUDE_CONFIG_ROOT", sandboxtest.Dir(t),
		"CLAUDE_PATH", claudetest.RealCLI(t),
		"ANTHROPIC_BASE_URL", model.URL,
		"JWT_SECRET", "t1:" + rand.Text() + rand.Text(),
	}
	a := newStack(t, shared...)
	b := newStack(t, append(shared, "S3_ENDPOINT", a.s3)...)
	tok, uid := a.signIn(t, uniqueSub("alternate"), "")

	conv := ""
	want := ""
	for i, env := range []*stack{a, b, a} {
		line := []string{"one", "two", "three"}[i]
		want += line + "\n"
		p := "/chat/stream"
		if conv != "" {
			p = "/chat/" + conv + "/stream"
		}
		cmd := "echo " + line + " >> log.txt; cat log.txt"
		r, evs := env.stream(t, p, `{"message":`+jsonString(anthropicfake.CommandPrefix+cmd)+`,"allowedTools":["Bash"]}`, tok)
		if r.status != 200 || len(evs) == 0 || evs[len(evs)-1].Type != "complete" {
			t.Fatalf("turn %d: %d %s %+v", i+1, r.status, r.body, evs)
		}
		conv = evs[len(evs)-1].ConversationID

		// The tool saw every earlier turn's line: the folder came back.
		results := model.ToolResults()
		if got := results[len(results)-1]; strings.TrimSpace(got) != strings.TrimSpace(want) {
			t.Fatalf("turn %d's tool read %q, want %q", i+1, got, want)
		}
		c, err := a.app.Store.Conversation(context.Background(), uid, conv)
		if err != nil || c.Workspace == "" {
			t.Fatalf("turn %d: conversation %+v %v", i+1, c, err)
		}
		keys := a.objects(t, "users/"+uid+"/conversations/"+conv+"/")
		for _, k := range keys {
			if !strings.Contains(k, "/"+c.Workspace+"/") {
				t.Fatalf("turn %d left a version the conversation does not name: %v (current %s)", i+1, keys, c.Workspace)
			}
		}
		if len(keys) != 2 {
			t.Fatalf("turn %d: saved %v", i+1, keys)
		}
		saved := a.archive(t, path.Join("users", uid, "conversations", conv, c.Workspace, "work.tar.gz"))["log.txt"]
		if saved != want {
			t.Fatalf("turn %d saved log.txt %q, want %q", i+1, saved, want)
		}
	}
	// Turn 3 resumed turn 2's transcript, not only turn 1's.
	reqs := model.Requests()
	var last anthropicfake.Request
	for _, r := range reqs {
		if strings.Contains(r.Prompt(), "echo three") {
			last = r
			break
		}
	}
	var seen []string
	for _, m := range last.Messages {
		seen = append(seen, m.Text())
	}
	if all := strings.Join(seen, "\n"); !strings.Contains(all, "echo two") {
		t.Fatalf("turn 3 did not resume turn 2: %q", all)
	}
}

// archive reads a saved folder (a tar.gz in S3): its files' contents by
// name.
func (s *stack) archive(t *testing.T, key string) map[string]string {
	t.Helper()
	resp, err := http.Get(s.s3 + "/" + s.app.Config.SessionsBucket + "/" + key)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	gz, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[path.Clean(hdr.Name)] = string(b)
	}
}
