package gitserver

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

const token = "github_pat_right"

var files = map[string]string{"README.md": "# demo\n", "src/main.go": "package main\n"}

func start(t *testing.T) *Server {
	t.Helper()
	srv, err := New(t.TempDir(), "octo", token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	if err := srv.NewRepo("demo", files, "main"); err != nil {
		t.Fatal(err)
	}
	return srv
}

func clone(t *testing.T, srv *Server, password string) (*git.Repository, string, error) {
	t.Helper()
	dir := t.TempDir()
	repo, err := git.PlainClone(dir, false, &git.CloneOptions{
		URL:      srv.URL("demo"),
		Auth:     &githttp.BasicAuth{Username: "x-access-token", Password: password},
		CABundle: srv.CertPEM(),
	})
	return repo, dir, err
}

func isAuthError(err error) bool {
	return errors.Is(err, transport.ErrAuthenticationRequired) || errors.Is(err, transport.ErrAuthorizationFailed)
}

func TestCloneWithToken(t *testing.T) {
	srv := start(t)
	repo, dir, err := clone(t, srv, token)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range files {
		got, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", p, got, err, want)
		}
	}
	head, err := repo.Head()
	if err != nil || head.Name() != plumbing.NewBranchReferenceName("main") {
		t.Errorf("HEAD = %v, %v; want main", head, err)
	}
}

func TestWrongTokenIsRefused(t *testing.T) {
	srv := start(t)
	if _, _, err := clone(t, srv, "github_pat_wrong"); !isAuthError(err) {
		t.Fatalf("clone with a wrong token: %v; want an authentication error", err)
	}
	if _, _, err := clone(t, srv, ""); !isAuthError(err) {
		t.Fatalf("clone without a token: %v; want an authentication error", err)
	}
}

func TestPushNewBranch(t *testing.T) {
	srv := start(t)
	repo, dir, err := clone(t, srv, token)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	branch := plumbing.NewBranchReferenceName("ovrlrd/conv-1")
	if err := wt.Checkout(&git.CheckoutOptions{Branch: branch, Create: true}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("# changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "NEW.md"), []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := wt.Add("."); err != nil {
		t.Fatal(err)
	}
	sig := &object.Signature{Name: "Ovrlrd", Email: "bot@ovrlrd.invalid", When: time.Now()}
	if _, err := wt.Commit("Change the readme", &git.CommitOptions{Author: sig}); err != nil {
		t.Fatal(err)
	}
	err = repo.Push(&git.PushOptions{
		RefSpecs: []config.RefSpec{config.RefSpec(branch + ":" + branch)},
		Auth:     &githttp.BasicAuth{Username: "x-access-token", Password: token},
		CABundle: srv.CertPEM(),
	})
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct{ branch, path, want string }{
		{"ovrlrd/conv-1", "README.md", "# changed\n"},
		{"ovrlrd/conv-1", "NEW.md", "new\n"},
		{"ovrlrd/conv-1", "src/main.go", files["src/main.go"]},
		{"main", "README.md", files["README.md"]},
	} {
		if got, err := srv.ReadFile("demo", c.branch, c.path); err != nil || got != c.want {
			t.Errorf("%s:%s = %q, %v; want %q", c.branch, c.path, got, err, c.want)
		}
	}
	if got, err := srv.ReadFile("demo", "main", "NEW.md"); err == nil {
		t.Errorf("main:NEW.md = %q; want no such file", got)
	}
}

func TestSetTokenRevokesTheOld(t *testing.T) {
	srv := start(t)
	srv.SetToken("github_pat_new")
	if _, _, err := clone(t, srv, token); !isAuthError(err) {
		t.Fatalf("clone with the revoked token: %v; want an authentication error", err)
	}
	if _, _, err := clone(t, srv, "github_pat_new"); err != nil {
		t.Fatalf("clone with the new token: %v", err)
	}
}

func TestClientTrustsTheServer(t *testing.T) {
	srv := start(t)
	resp, err := srv.Client().Get(srv.URL("demo") + "/info/refs?service=git-upload-pack")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Basic realm="git"` {
		t.Errorf("unauthenticated: %d %q; want 401 with a Basic challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if _, err := os.Stat(srv.CertFile()); err != nil {
		t.Error(err)
	}
}
