//go:build linux

package app_test

import (
	"encoding/base64"
	"regexp"
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/devkit/anthropicfake"
)

// A tool of a project's conversation looks for the project's token
// everywhere it can read: the files of its conversation (the checkout
// included), every temporary folder, and the environment and command line
// of every process. The token is assembled at run time, so the command
// itself, which the transcript keeps, never holds it.
func TestToolCannotFindTheProjectToken(t *testing.T) {
	p := newProjectStack(t, "SANDBOX_UIDS", "1600300000-1600300099")
	tok, _ := p.signIn(t, uniqueSub("project-token"), "")
	id := p.addProject(t, tok, "app", "")["id"].(string)
	basic := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + p.token))
	split := func(s string) (string, string) { return s[:len(s)/2], s[len(s)/2:] }
	a, b := split(p.token)
	c, d := split(basic)
	script := `echo FOUND:; for t in "` + a + `""` + b + `" "` + c + `""` + d + `"; do ` +
		`grep -rlF -- "$t" . .. /tmp /var/tmp /dev/shm "$HOME" 2>/dev/null; ` +
		`for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do grep -lF -- "$t" "$f" 2>/dev/null; done; ` +
		`done; echo :FOUND; ls -a; echo END-OF-ATTACK`
	body := `{"message":` + jsonString(anthropicfake.CommandPrefix+script) + `,"allowedTools":["Bash"],"projectId":` + jsonString(id) + `}`
	evs := p.turn(t, "/chat/stream", body, tok)
	results := p.model.ToolResults()
	if len(results) == 0 || !strings.Contains(results[len(results)-1], "END-OF-ATTACK") {
		t.Fatalf("the search did not run to its end: %q %+v", results, evs)
	}
	out := results[len(results)-1]
	// The checkout is there (README.md) and has no .git of the server's.
	if !strings.Contains(out, "README.md") || strings.Contains(out, ".git\n") {
		t.Fatalf("the tool's folder: %q", out)
	}
	found := regexp.MustCompile(`(?s)FOUND:(.*):FOUND`).FindStringSubmatch(out)
	if found == nil || strings.TrimSpace(found[1]) != "" {
		t.Fatalf("the tool found the token in: %q", out)
	}
}
