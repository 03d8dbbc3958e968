package repo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

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

// conv is a conversation's two directories after Fetch and Checkout.
type conv struct{ gitDir, workDir, base string }

func checkout(t *testing.T, r Remote, from, branch string) conv {
	t.Helper()
	dir := t.TempDir()
	c := conv{gitDir: filepath.Join(dir, "git"), workDir: filepath.Join(dir, "work")}
	var err error
	if c.base, err = Fetch(t.Context(), r, c.gitDir, from, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := Checkout(c.gitDir, c.workDir, c.base, branch, 1<<20); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCheck(t *testing.T) {
	srv, r := start(t)
	ctx := t.Context()
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
	a := checkout(t, r, "main", "ovrlrd/a")
	r.AllowLoopback = false
	_, err := Check(t.Context(), r, "")
	wantErr(t, err, ovrlrd.EINVALID, "The repository's address is not allowed.")
	gitDir := filepath.Join(t.TempDir(), "git")
	_, err = Fetch(t.Context(), r, gitDir, "main", 1<<20)
	wantErr(t, err, ovrlrd.EINVALID, "The repository's address is not allowed.")
	if _, err := os.Stat(gitDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("refused fetch left %s behind: %v", gitDir, err)
	}
	wantErr(t, Push(t.Context(), r, a.gitDir, "ovrlrd/a"), ovrlrd.EINVALID, "The repository's address is not allowed.")
}

// Without a CABundle go-git uses the installed transport itself, as in
// production, rather than a per-session clone of it.
func TestGuardWithoutCABundle(t *testing.T) {
	_, r := start(t)
	r.CABundle = nil
	r.AllowLoopback = false
	_, err := Check(t.Context(), r, "")
	wantErr(t, err, ovrlrd.EINVALID, "The repository's address is not allowed.")
	// Allowed to dial, the connection then fails on the test certificate,
	// which only system roots could vouch for.
	r.AllowLoopback = true
	_, err = Check(t.Context(), r, "")
	wantErr(t, err, ovrlrd.EINVALID, "The repository's certificate is not trusted.")
}

// A connection dialled for a call allowed loopback must not serve the next
// call, which is not.
func TestGuardPoolsNoConnection(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(srv.Close)
	c := &http.Client{Transport: guarded}
	get := func(allowLoopback bool) error {
		req, err := http.NewRequestWithContext(withPolicy(t.Context(), allowLoopback), http.MethodGet, srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return err
	}
	if err := get(true); err != nil {
		t.Fatal(err)
	}
	if err := get(false); !errors.Is(err, errRefused) {
		t.Fatalf("second call = %v; want refused", err)
	}
}

func TestGuardRefusesAReplacedTransport(t *testing.T) {
	_, r := start(t)
	a := checkout(t, r, "main", "ovrlrd/a")
	client.InstallProtocol("https", githttp.NewClient(nil))
	t.Cleanup(func() { client.InstallProtocol("https", guardedClient) })
	if _, err := Check(t.Context(), r, ""); !errors.Is(err, errReplaced) {
		t.Errorf("Check = %v; want %v", err, errReplaced)
	}
	if _, err := Fetch(t.Context(), r, filepath.Join(t.TempDir(), "git"), "main", 1<<20); !errors.Is(err, errReplaced) {
		t.Errorf("Fetch = %v; want %v", err, errReplaced)
	}
	if err := Push(t.Context(), r, a.gitDir, "ovrlrd/a"); !errors.Is(err, errReplaced) {
		t.Errorf("Push = %v; want %v", err, errReplaced)
	}
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
		{"::1", false, false},
		{"::ffff:127.0.0.1", false, false},
		{"::ffff:10.0.0.1", true, false},
		{"10.0.0.1", true, false},
		{"192.168.1.1", true, false},
		{"100.64.0.1", true, false},
		{"169.254.169.254", true, false},
		{"fd00:ec2::254", true, false},
		{"fe80::1", true, false},
		{"0.0.0.0", true, false},
		{"0.1.2.3", true, false},
		{"224.0.0.1", true, false},
		{"192.0.0.8", true, false},
		{"192.0.2.1", true, false},
		{"198.18.0.1", true, false},
		{"198.19.255.255", true, false},
		{"198.51.100.1", true, false},
		{"203.0.113.1", true, false},
		{"240.0.0.1", true, false},
		{"255.255.255.255", true, false},
		{"::", true, false},
		{"::a9fe:a9fe", true, false},                 // IPv4-compatible 169.254.169.254
		{"64:ff9b::a9fe:a9fe", true, false},          // NAT64
		{"64:ff9b:1::a9fe:a9fe", true, false},        // local-use NAT64
		{"2002:a9fe:a9fe::1", true, false},           // 6to4
		{"2001:0:4136:e378::a9fe:a9fe", true, false}, // Teredo
		{"2001:4860:4860::8888", false, true},        // beside Teredo's /32
		{"ff02::1", true, false},
		{"fec0::1", true, false},            // site-local, deprecated
		{"feff:ffff::1", true, false},       // its last /16
		{"::ffff:203.0.114.1", false, true}, // mapped, and public
	} {
		if got := allowed(netip.MustParseAddr(c.ip), c.loopback); got != c.way {
			t.Errorf("allowed(%s, loopback=%v) = %v", c.ip, c.loopback, got)
		}
	}
}

// Outside the local stage only port 443 is dialled, so a URL or redirect
// naming another port is refused before any connection is tried.
func TestGuardPorts(t *testing.T) {
	strict, local := withPolicy(t.Context(), false), withPolicy(t.Context(), true)
	for _, c := range []struct {
		ctx     context.Context
		address string
		way     bool
	}{
		{strict, "93.184.216.34:443", true},
		{strict, "[2606:4700::1]:443", true},
		{strict, "93.184.216.34:80", false},
		{strict, "93.184.216.34:8443", false},
		{strict, "93.184.216.34:22", false},
		{strict, "[2606:4700::1]:8080", false},
		{strict, "93.184.216.34:0", false},
		{strict, "127.0.0.1:443", false},
		{strict, "not an address", false},
		{t.Context(), "93.184.216.34:443", true}, // no policy: the strict one
		{t.Context(), "93.184.216.34:8443", false},
		{local, "127.0.0.1:41873", true},
		{local, "[::1]:41873", true},
		{local, "93.184.216.34:8443", true},
		{local, "10.0.0.1:443", false},
		{local, "[fec0::1]:443", false},
	} {
		err := control(c.ctx, "tcp", c.address, nil)
		if got := err == nil; got != c.way || err != nil && err != errRefused {
			t.Errorf("control(%s, loopback=%v) = %v", c.address, c.ctx == local, err)
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

// A server's error body can say anything, the token it was sent included:
// none of it may reach the error, the logged cause or anything it wraps.
func TestErrorsKeepNoServerText(t *testing.T) {
	const marker = "SERVER-SUPPLIED-TEXT"
	var status int
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pass, _ := r.BasicAuth()
		http.Error(w, marker+" "+pass, status)
	}))
	t.Cleanup(srv.Close)
	r := Remote{
		URL: srv.URL + "/demo.git", Token: token, AllowLoopback: true,
		CABundle: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}),
	}
	for code, want := range map[int]error{
		http.StatusUnauthorized:        transport.ErrAuthenticationRequired,
		http.StatusForbidden:           transport.ErrAuthorizationFailed,
		http.StatusNotFound:            transport.ErrRepositoryNotFound,
		http.StatusInternalServerError: nil,
		http.StatusServiceUnavailable:  nil,
	} {
		status = code
		_, err := Check(t.Context(), r, "")
		if err == nil {
			t.Fatalf("%d: no error", code)
		}
		if want != nil && !errors.Is(err, want) {
			t.Errorf("%d: %v does not keep its kind %v", code, err, want)
		}
		if want == nil && !strings.Contains(err.Error(), fmt.Sprintf("HTTP status %d", code)) {
			t.Errorf("%d: %v does not keep the status", code, err)
		}
		for e := err; e != nil; e = errors.Unwrap(e) {
			if strings.Contains(e.Error(), marker) || strings.Contains(e.Error(), token) {
				t.Errorf("%d: %q holds what the server said", code, e.Error())
			}
		}
	}
}

func TestFetchAndCheckoutKeepNoToken(t *testing.T) {
	_, r := start(t)
	c := checkout(t, r, "main", "ovrlrd/a")
	for p, want := range files {
		if got, err := os.ReadFile(filepath.Join(c.workDir, p)); err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", p, got, err, want)
		}
	}
	if _, err := os.Lstat(filepath.Join(c.workDir, ".git")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the working tree has a .git: %v", err)
	}
	if head, err := os.ReadFile(filepath.Join(c.gitDir, "HEAD")); err != nil || string(head) != "ref: refs/heads/ovrlrd/a\n" {
		t.Errorf("HEAD = %q, %v", head, err)
	}
	basic := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + token))
	for _, dir := range []string{c.gitDir, c.workDir} {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			b, err := os.ReadFile(p)
			if bytes.Contains(b, []byte(token)) || bytes.Contains(b, []byte(basic)) {
				t.Errorf("%s holds the token", p)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestFetchSizeLimit(t *testing.T) {
	_, r := start(t)
	absent := filepath.Join(t.TempDir(), "git")
	_, err := Fetch(t.Context(), r, absent, "main", 64)
	wantErr(t, err, ovrlrd.EINVALID, "larger than the limit of 64 bytes")
	if _, err := os.Stat(absent); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("partial fetch left behind: %v", err)
	}
	empty := t.TempDir()
	_, err = Fetch(t.Context(), r, empty, "main", 64)
	wantErr(t, err, ovrlrd.EINVALID, "larger than the limit of 64 bytes")
	if entries, err := os.ReadDir(empty); err != nil || len(entries) > 0 {
		t.Errorf("the empty directory given = %v, %v; want it kept, empty", entries, err)
	}
}

// A cached copy of the project receives only what it lacks.
func TestFetchIntoACachedCopy(t *testing.T) {
	srv, r := start(t)
	noise := make([]byte, 256<<10) // incompressible: the whole pack is larger than what is new
	rand.Read(noise)
	if err := srv.NewRepo("noisy", map[string]string{"noise.bin": base64.StdEncoding.EncodeToString(noise)}, "main"); err != nil {
		t.Fatal(err)
	}
	r.URL = srv.URL("noisy")
	cached := filepath.Join(t.TempDir(), "git")
	if _, err := Fetch(t.Context(), r, cached, "main", 1<<20); err != nil {
		t.Fatal(err)
	}
	other := checkout(t, r, "main", "ovrlrd/b")
	if err := os.WriteFile(filepath.Join(other.workDir, "NEW.md"), []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	want, _, err := Commit(other.gitDir, other.workDir, "New", "Ovrlrd", "bot@ovrlrd.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := Push(t.Context(), r, other.gitDir, "ovrlrd/b"); err != nil {
		t.Fatal(err)
	}
	_, err = Fetch(t.Context(), r, filepath.Join(t.TempDir(), "git"), "ovrlrd/b", 16<<10)
	wantErr(t, err, ovrlrd.EINVALID, "larger than the limit") // all of it would not fit
	if got, err := Fetch(t.Context(), r, cached, "ovrlrd/b", 16<<10); err != nil || got != want {
		t.Fatalf("Fetch into the cached copy = %q, %v; want %s", got, err, want)
	}
	if got, err := Fetch(t.Context(), r, cached, "ovrlrd/b", 16<<10); err != nil || got != want {
		t.Fatalf("Fetch again = %q, %v; want %s", got, err, want)
	}
}

func TestFetchRefusesWhatIsNotItsOwn(t *testing.T) {
	_, r := start(t)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Fetch(t.Context(), r, file, "main", 1<<20); err == nil {
		t.Error("Fetch into a file succeeded")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Fetch(t.Context(), r, dir, "main", 1<<20); err == nil {
		t.Error("Fetch into a directory holding no repository succeeded")
	}
	for _, p := range []string{file, filepath.Join(dir, "notes")} {
		if b, err := os.ReadFile(p); err != nil || string(b) != "mine" {
			t.Errorf("%s = %q, %v; want it untouched", p, b, err)
		}
	}
	_, err := Fetch(t.Context(), r, filepath.Join(t.TempDir(), "git"), "nope", 1<<20)
	wantErr(t, err, ovrlrd.EINVALID, `no branch "nope"`)
}

func TestCommitAndPush(t *testing.T) {
	srv, r := start(t)
	ctx := t.Context()
	const branch = "ovrlrd/abc123"

	a := checkout(t, r, "main", branch)
	if _, committed, err := Commit(a.gitDir, a.workDir, "nothing", "Ovrlrd", "bot@ovrlrd.test"); err != nil || committed {
		t.Fatalf("empty Commit = %v, %v; want nothing committed", committed, err)
	}
	if head, err := Head(a.gitDir); err != nil || head != a.base {
		t.Fatalf("Head = %q, %v; want the base %s", head, err, a.base)
	}
	if err := os.WriteFile(filepath.Join(a.workDir, "README.md"), []byte("# changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(a.workDir, "src/main.go")); err != nil {
		t.Fatal(err)
	}
	hash, committed, err := Commit(a.gitDir, a.workDir, "Change", "Ovrlrd", "bot@ovrlrd.test")
	if err != nil || !committed || len(hash) != 40 {
		t.Fatalf("Commit = %q, %v, %v", hash, committed, err)
	}
	if head, err := Head(a.gitDir); err != nil || head != hash {
		t.Fatalf("Head = %q, %v; want %s", head, err, hash)
	}
	if err := Push(ctx, r, a.gitDir, branch); err != nil {
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
	b := checkout(t, r, branch, branch)
	if err := os.WriteFile(filepath.Join(b.workDir, "README.md"), []byte("# theirs\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Commit(b.gitDir, b.workDir, "Theirs", "Other", "other@ovrlrd.test"); err != nil {
		t.Fatal(err)
	}
	if err := Push(ctx, r, b.gitDir, branch); err != nil {
		t.Fatal(err)
	}
	// ...so the next push from the first copy is a conflict, not a force.
	if err := os.WriteFile(filepath.Join(a.workDir, "README.md"), []byte("# ours again\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Commit(a.gitDir, a.workDir, "Ours", "Ovrlrd", "bot@ovrlrd.test"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, Push(ctx, r, a.gitDir, branch), ovrlrd.ECONFLICT, "changed on the server")
	if got, err := srv.ReadFile("demo", branch, "README.md"); err != nil || got != "# theirs\n" {
		t.Fatalf("server %s README = %q, %v; want theirs kept", branch, got, err)
	}
}

func TestPushWithRevokedToken(t *testing.T) {
	srv, r := start(t)
	c := checkout(t, r, "main", "ovrlrd/x")
	srv.SetToken("rotated")
	wantErr(t, Push(t.Context(), r, c.gitDir, "ovrlrd/x"), ovrlrd.EINVALID, "The token cannot push to this repository.")
}

func TestOnlyConversationBranches(t *testing.T) {
	srv, r := start(t)
	c := checkout(t, r, "main", "ovrlrd/x")
	wantErr(t, Push(t.Context(), r, c.gitDir, "main"), ovrlrd.EINVALID, `"main" is not a conversation branch`)
	if got, err := srv.ReadFile("demo", "main", "README.md"); err != nil || got != files["README.md"] {
		t.Fatalf("server main README = %q, %v", got, err)
	}

	dir := t.TempDir()
	gitDir, workDir := filepath.Join(dir, "git"), filepath.Join(dir, "work")
	base, err := Fetch(t.Context(), r, gitDir, "main", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, Checkout(gitDir, workDir, base, "main", 1<<20), ovrlrd.EINVALID, "not a conversation branch")
	if err := os.Mkdir(workDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// HEAD is still where Fetch left it: on no conversation branch.
	_, _, err = Commit(gitDir, workDir, "x", "Ovrlrd", "bot@ovrlrd.test")
	wantErr(t, err, ovrlrd.EINVALID, "not a conversation branch")
}
