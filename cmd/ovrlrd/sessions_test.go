package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// A session id that is not a UUID is refused before the disk is touched:
// here Claude Code's folder does not even exist.
func TestImportRefusesSessionIDs(t *testing.T) {
	d := newDesk(t)
	d.claude = filepath.Join(d.home, "missing")
	for _, id := range []string{"../x", "..", "x/../../etc/passwd", "0F8FAD5B-D9CB-469F-A165-70867728950E", sessionA + ".jsonl", ""} {
		r := d.run(t, "import", "--claude-dir", d.claude, "--url", "https://api.example.com", "--token", "t", id)
		if r.code != 1 || !strings.Contains(r.stderr, "is not a session id") {
			t.Errorf("import %q: %+v", id, r)
		}
	}
	p, err := openProjects(newDesk(t).claude)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, _, err := p.find(t.Context(), "../"+sessionA); err == nil || !strings.Contains(err.Error(), "is not a session id") {
		t.Errorf("find: %v", err)
	}
}

// linkOrSkip makes a symbolic link, or skips where the system allows none
// (Windows without the privilege).
func linkOrSkip(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Skipf("no symbolic links here: %v", err)
	}
}

// No transcript is read through a link: one to a file outside the
// projects folder, one to a file inside it, or a slug folder that is a
// link.
func TestLinksAreRefused(t *testing.T) {
	d := newDesk(t)
	projects := filepath.Join(d.claude, "projects")
	outside := filepath.Join(d.home, "elsewhere")
	if err := os.MkdirAll(outside, 0o700); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(outside, sessionA+".jsonl")
	if err := os.WriteFile(secret, synthetic(sessionA, "/x", "outside", "no"), 0o600); err != nil {
		t.Fatal(err)
	}
	inside := d.place(t, "-real", sessionC, synthetic(sessionC, "/real", "inside", "yes"))

	linkOrSkip(t, secret, filepath.Join(projects, "-a", sessionA+".jsonl"))
	linkOrSkip(t, inside, filepath.Join(projects, "-b", sessionB+".jsonl"))
	linkOrSkip(t, outside, filepath.Join(projects, "-linked"))

	p, err := openProjects(d.claude)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for id, want := range map[string]string{
		sessionA: filepath.Join(projects, "-a", sessionA+".jsonl") + " is a symbolic link",
		sessionB: filepath.Join(projects, "-b", sessionB+".jsonl") + " is a symbolic link",
	} {
		if _, _, err := p.find(t.Context(), id); err == nil || !errors.Is(err, errLink) || !strings.Contains(err.Error(), want) {
			t.Errorf("find %s: %v", id, err)
		}
	}
	// The real file is found where it is.
	if data, path, err := p.find(t.Context(), sessionC); err != nil || path != inside || !strings.Contains(string(data), "inside") {
		t.Errorf("find %s: %q, %v", sessionC, path, err)
	}

	// A linked slug folder is not looked into.
	if err := os.Remove(filepath.Join(projects, "-a", sessionA+".jsonl")); err != nil {
		t.Fatal(err)
	}
	_, _, err = p.find(t.Context(), sessionA)
	if err == nil || !strings.Contains(err.Error(), "not found") || !strings.Contains(err.Error(), "links are not followed: -linked") {
		t.Errorf("find through a linked folder: %v", err)
	}

	// The list says the same, and goes on.
	r := d.run(t, "sessions")
	if r.code != 0 {
		t.Fatalf("sessions: %+v", r)
	}
	for _, want := range []string{
		sessionC + " ", "/real", "inside",
		sessionB + " ", "(not read: it is a symbolic link, and ovrlrd reads nothing through a link)",
		"-linked", "(not read: it is a symbolic link, not followed)",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the list lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "outside") {
		t.Errorf("the list read through a link:\n%s", r.stdout)
	}
}

// The list shows each session's project, first prompt and message count,
// newest first; a transcript that does not parse is listed as not read,
// and one larger than the server takes is refused unread.
func TestSessionsList(t *testing.T) {
	d := newDesk(t)
	older := d.place(t, "-srv-old", sessionA, synthetic(sessionA, "/srv/old", "First\tprompt\nof the old one", "Done."))
	newer := d.place(t, "-srv-new", sessionB, synthetic(sessionB, "/srv/new", "Fix the "+strings.Repeat("long ", 40)+"bug", "Done."))
	broken := d.place(t, "-srv-new", sessionC, []byte("{not json\n"))
	now := time.Now()
	for path, at := range map[string]time.Time{older: now.Add(-2 * time.Hour), newer: now.Add(-time.Hour), broken: now} {
		if err := os.Chtimes(path, at, at); err != nil {
			t.Fatal(err)
		}
	}
	// Not sessions: other files, and names that are not UUIDs.
	d.place(t, "-srv-new", "notes", []byte("x"))
	if err := os.WriteFile(filepath.Join(d.claude, "projects", "stray.jsonl"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	r := d.run(t, "sessions")
	if r.code != 0 {
		t.Fatalf("sessions: %+v", r)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "SESSION") {
		t.Fatalf("the list:\n%s", r.stdout)
	}
	for i, want := range [][]string{
		{sessionC, "-srv-new", "(not read: Line 1 of the transcript is not valid JSON.)"},
		{sessionB, " 2 ", "/srv/new", "Fix the long long", "…"},
		{sessionA, " 2 ", "/srv/old", "First prompt of the old one"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i+1], w) {
				t.Errorf("line %d lacks %q: %q", i+1, w, lines[i+1])
			}
		}
	}

	// Too large: refused from its size alone (a sparse file).
	if err := os.Truncate(newer, maxTranscript+1); err != nil {
		t.Fatal(err)
	}
	r = d.run(t, "sessions")
	if !strings.Contains(r.stdout, "(not read: it is 100.0 MB, more than the 100 MB a session may have)") {
		t.Errorf("the list:\n%s", r.stdout)
	}
	r = d.run(t, "import", "--url", "https://api.example.com", "--token", "t", sessionB)
	if r.code != 1 || !strings.Contains(r.stderr, "more than the 100 MB") {
		t.Errorf("import: %+v", r)
	}
}

// CLAUDE_CONFIG_DIR moves Claude Code's folder, as it does for the CLI;
// --claude-dir wins over it.
func TestClaudeDir(t *testing.T) {
	sys := system{getenv: func(string) string { return "" }, homeDir: func() (string, error) { return "home", nil }}
	if got, _ := claudeDir("", sys); got != filepath.Join("home", ".claude") {
		t.Errorf("default: %q", got)
	}
	sys.getenv = func(k string) string { return map[string]string{"CLAUDE_CONFIG_DIR": "env"}[k] }
	if got, _ := claudeDir("", sys); got != "env" {
		t.Errorf("CLAUDE_CONFIG_DIR: %q", got)
	}
	if got, _ := claudeDir("flag", sys); got != "flag" {
		t.Errorf("--claude-dir: %q", got)
	}
}

// Escape sequences in a prompt, a project's path or a folder's name reach
// the terminal as text.
func TestSessionsEscapes(t *testing.T) {
	d := newDesk(t)
	d.place(t, "-srv-x", sessionA, synthetic(sessionA, "/srv/\x1b]0;cwd\a", "\x1b[2Jwiped", "Done."))
	d.place(t, "-bad\x1b[31m", sessionB, []byte("{not json\n"))
	r := d.run(t, "sessions")
	if r.code != 0 || strings.ContainsAny(r.stdout, "\x1b\a") || !strings.Contains(r.stdout, `\x1b[2Jwiped`) ||
		!strings.Contains(r.stdout, `/srv/\x1b]0;cwd\a`) || !strings.Contains(r.stdout, `-bad\x1b[31m`) {
		t.Errorf("%+v", r)
	}
	r = d.run(t, "import", "--url", "https://api.example.com", "--token", "t", sessionB)
	if r.code != 1 || strings.Contains(r.stderr, "\x1b") || !strings.Contains(r.stderr, `-bad\x1b[31m`) {
		t.Errorf("import: %+v", r)
	}
}

// A transcript still being written ends in part of a line: what is
// listed and sent stops at the last whole one.
func TestPartialLastLine(t *testing.T) {
	d := newDesk(t)
	data := synthetic(sessionA, "/srv/p", "Hello", "Done.")
	path := d.place(t, "-srv-p", sessionA, append(slices.Clip(data), `{"type":"user","mess`...))
	r := d.run(t, "sessions")
	if r.code != 0 || !strings.Contains(r.stdout, " 2 ") || strings.Contains(r.stdout, "not read") {
		t.Errorf("sessions: %+v", r)
	}
	p, err := openProjects(d.claude)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if got, gotPath, err := p.find(t.Context(), sessionA); err != nil || gotPath != path || string(got) != string(data) {
		t.Errorf("find: %q, %v", got, err)
	}
}

// Only the newest sessions are read unless --all; the rest are counted.
func TestSessionsNewestOnly(t *testing.T) {
	d := newDesk(t)
	now := time.Now()
	for i := range listed + 2 {
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		path := d.place(t, "-srv-p", id, synthetic(id, "/srv/p", "Hello", "Done."))
		at := now.Add(-time.Duration(i) * time.Minute)
		if err := os.Chtimes(path, at, at); err != nil {
			t.Fatal(err)
		}
	}
	r := d.run(t, "sessions")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != listed+1 || !strings.HasPrefix(lines[1], "00000000-0000-4000-8000-000000000000") ||
		!strings.HasPrefix(lines[listed], fmt.Sprintf("00000000-0000-4000-8000-%012d", listed-1)) || !strings.Contains(r.stderr, "2 older sessions not shown") {
		t.Errorf("%d lines, %+v", len(lines), r)
	}
	if r := d.run(t, "sessions", "--all"); r.code != 0 || strings.Count(r.stdout, "\n") != listed+3 || r.stderr != "" {
		t.Errorf("--all: %+v", r)
	}
}

// Listing and finding stop once the run is cancelled (Ctrl-C).
func TestCancelled(t *testing.T) {
	d := newDesk(t)
	d.place(t, "-srv-p", sessionA, synthetic(sessionA, "/srv/p", "Hello", "Done."))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var stdout, stderr strings.Builder
	if code := run(ctx, []string{"sessions"}, d.system(), &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "context canceled") {
		t.Errorf("sessions: %d %q %q", code, stdout.String(), stderr.String())
	}
	p, err := openProjects(d.claude)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, _, err := p.find(ctx, sessionA); !errors.Is(err, context.Canceled) {
		t.Errorf("find: %v", err)
	}
}

// A slug folder that cannot be opened is passed over while the session is
// found elsewhere, and named when it is not. One that vanished after the
// listing stands for any folder that fails to open: a permission refused
// to others is no refusal to root, which runs these tests here.
func TestFindSkipsUnreadableFolders(t *testing.T) {
	d := newDesk(t)
	d.place(t, "-b-here", sessionA, synthetic(sessionA, "/srv/p", "Hello", "Done."))
	p, err := openProjects(d.claude)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	dirs := []string{"-a-locked", "-b-here"} // as listed, before -a-locked went
	if _, _, err := p.search(t.Context(), sessionA, dirs, nil); err != nil {
		t.Errorf("found: %v", err)
	}
	if _, _, err := p.search(t.Context(), sessionB, dirs, nil); err == nil || !strings.Contains(err.Error(), "not found") || !strings.Contains(err.Error(), "not searched: -a-locked") {
		t.Errorf("not found: %v", err)
	}
}
