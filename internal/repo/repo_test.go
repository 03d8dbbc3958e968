package repo

import (
	"bytes"
	"context"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/devkit/gitserver"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

const token = "github_pat_secret_token"

var files = map[string]string{"README.md": "# demo\n", "src/main.go": "package main\n"}

func start(t *testing.T) (*gitserver.Server, Remote) {
	t.Helper()
	srv, err := gitserver.New(t.TempDir(), "octo", token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	if err := srv.NewRepo("demo", files, "main"); err != nil {
		t.Fatal(err)
	}
	return srv, Remote{URL: srv.URL("demo"), Token: token, CABundle: srv.CertPEM(), AllowLoopback: true}
}

func wantErr(t *testing.T, err error, code, msg string) {
	t.Helper()
	if ovrlrd.ErrorCode(err) != code || !strings.Contains(ovrlrd.ErrorMessage(err), msg) {
		t.Fatalf("err = %v; want %s containing %q", err, code, msg)
	}
	if strings.Contains(ovrlrd.ErrorMessage(err), token) {
		t.Fatalf("message leaks the token: %q", ovrlrd.ErrorMessage(err))
	}
}

func clone(t *testing.T, r Remote, branch string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "work")
	if err := Clone(context.Background(), r, branch, dir, 1<<20); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCheck(t *testing.T) {
	srv, r := start(t)
	ctx := context.Background()
	if got, err := Check(ctx, r, ""); err != nil || got != "main" {
		t.Fatalf("Check default = %q, %v; want main", got, err)
	}
	if got, err := Check(ctx, r, "main"); err != nil || got != "main" {
		t.Fatalf("Check main = %q, %v", got, err)
	}
	_, err := Check(ctx, r, "nope")
	wantErr(t, err, ovrlrd.EINVALID, `no branch "nope"`)

	bad := r
	bad.Token = "wrong"
	_, err = Check(ctx, bad, "")
	wantErr(t, err, ovrlrd.EINVALID, "The token cannot read this repository.")

	missing := r
	missing.URL = srv.URL("absent")
	_, err = Check(ctx, missing, "")
	wantErr(t, err, ovrlrd.EINVALID, "The repository was not found.")
}

func TestGuardRefusesLoopback(t *testing.T) {
	_, r := start(t)
	r.AllowLoopback = false
	_, err := Check(context.Background(), r, "")
	wantErr(t, err, ovrlrd.EINVALID, "The repository's address is not allowed.")
	err = Clone(context.Background(), r, "main", filepath.Join(t.TempDir(), "w"), 1<<20)
	wantErr(t, err, ovrlrd.EINVALID, "The repository's address is not allowed.")
}

func TestAllowed(t *testing.T) {
	for _, c := range []struct {
		ip            string
		loopback, way bool
	}{
		{"93.184.216.34", false, true},
		{"2606:4700::1", false, true},
		{"127.0.0.1", false, false},
		{"127.0.0.1", true, true},
		{"::1", true, true},
		{"::ffff:127.0.0.1", false, false},
		{"10.0.0.1", true, false},
		{"192.168.1.1", true, false},
		{"100.64.0.1", true, false},
		{"169.254.169.254", true, false},
		{"fd00:ec2::254", true, false},
		{"fe80::1", true, false},
		{"0.0.0.0", true, false},
		{"224.0.0.1", true, false},
	} {
		if got := allowed(netip.MustParseAddr(c.ip), c.loopback); got != c.way {
			t.Errorf("allowed(%s, loopback=%v) = %v", c.ip, c.loopback, got)
		}
	}
}

func TestCheckURL(t *testing.T) {
	for raw, msg := range map[string]string{
		"":                                   "not a valid URL",
		"http://example.com/a.git":           "https://",
		"ftp://example.com/a.git":            "https://",
		"example.com/a.git":                  "https://",
		"https://user:pw@example.com/a.git":  "user name or password",
		"https://tok@example.com/a.git":      "user name or password",
		"https://example.com/a.git?x=1":      "query or a fragment",
		"https://example.com/a.git#frag":     "query or a fragment",
		"https:///a.git":                     "name a host",
		"https://example.com:443/o/r.git?":   "query or a fragment",
		"https://github.com/octo/demo.git\n": "not a valid URL",
	} {
		wantErr(t, CheckURL(raw), ovrlrd.EINVALID, msg)
	}
	if err := CheckURL("https://github.com/octo/demo.git"); err != nil {
		t.Fatal(err)
	}
}

func TestCloneKeepsNoToken(t *testing.T) {
	_, r := start(t)
	dir := clone(t, r, "main")
	for p, want := range files {
		if got, err := os.ReadFile(filepath.Join(dir, p)); err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", p, got, err, want)
		}
	}
	err := filepath.WalkDir(filepath.Join(dir, ".git"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte(token)) {
			t.Errorf("%s holds the token", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCloneSizeLimit(t *testing.T) {
	_, r := start(t)
	dir := filepath.Join(t.TempDir(), "work")
	err := Clone(context.Background(), r, "main", dir, 64)
	wantErr(t, err, ovrlrd.EINVALID, "larger than the limit of 64 bytes")
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("partial clone left behind: %v", err)
	}
}

func TestBranchCommitPush(t *testing.T) {
	srv, r := start(t)
	ctx := context.Background()
	const branch = "ovrlrd/abc123"

	a := clone(t, r, "main")
	if err := StartBranch(a, branch); err != nil {
		t.Fatal(err)
	}
	if _, committed, err := Commit(a, "nothing", "Ovrlrd", "bot@ovrlrd.test"); err != nil || committed {
		t.Fatalf("empty Commit = %v, %v; want nothing committed", committed, err)
	}
	if err := os.WriteFile(filepath.Join(a, "README.md"), []byte("# changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(a, "src/main.go")); err != nil {
		t.Fatal(err)
	}
	hash, committed, err := Commit(a, "Change", "Ovrlrd", "bot@ovrlrd.test")
	if err != nil || !committed || len(hash) != 40 {
		t.Fatalf("Commit = %q, %v, %v", hash, committed, err)
	}
	if err := Push(ctx, r, a, branch); err != nil {
		t.Fatal(err)
	}
	if got, err := srv.ReadFile("demo", branch, "README.md"); err != nil || got != "# changed\n" {
		t.Fatalf("server %s README = %q, %v", branch, got, err)
	}
	if _, err := srv.ReadFile("demo", branch, "src/main.go"); err == nil {
		t.Error("deletion was not pushed")
	}
	if got, err := srv.ReadFile("demo", "main", "README.md"); err != nil || got != files["README.md"] {
		t.Fatalf("server main README = %q, %v; want unchanged", got, err)
	}

	// Someone else moves the branch on the server...
	b := clone(t, r, branch)
	if err := os.WriteFile(filepath.Join(b, "README.md"), []byte("# theirs\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Commit(b, "Theirs", "Other", "other@ovrlrd.test"); err != nil {
		t.Fatal(err)
	}
	if err := Push(ctx, r, b, branch); err != nil {
		t.Fatal(err)
	}
	// ...so the next push from the first copy is a conflict, not a force.
	if err := os.WriteFile(filepath.Join(a, "README.md"), []byte("# ours again\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Commit(a, "Ours", "Ovrlrd", "bot@ovrlrd.test"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, Push(ctx, r, a, branch), ovrlrd.ECONFLICT, "changed on the server")
	if got, err := srv.ReadFile("demo", branch, "README.md"); err != nil || got != "# theirs\n" {
		t.Fatalf("server %s README = %q, %v; want theirs kept", branch, got, err)
	}
}

func TestPushWithRevokedToken(t *testing.T) {
	srv, r := start(t)
	dir := clone(t, r, "main")
	if err := StartBranch(dir, "ovrlrd/x"); err != nil {
		t.Fatal(err)
	}
	srv.SetToken("rotated")
	wantErr(t, Push(context.Background(), r, dir, "ovrlrd/x"), ovrlrd.EINVALID, "The token cannot push to this repository.")
}
