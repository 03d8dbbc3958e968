// Package gitserver is a loopback git host for tests and `make dev`: the
// real `git http-backend` behind net/http/cgi, over HTTPS with
// httptest's certificate, and HTTP basic auth checked against one access
// token, the way a host checks a fine-grained token. Real hosts are out of
// reach here, and a real smart-HTTP server keeps the client under test
// honest about the protocol. Test support only: never linked into a Lambda.
package gitserver

import (
	"bytes"
	"crypto/subtle"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
)

// Server serves every bare repository <name>.git under its directory at
// URL(name).
type Server struct {
	dir     string // the repositories
	state   string // HOME of every git process, and the certificate file
	user    string
	token   atomic.Pointer[string]
	backend string // path of git-http-backend
	certPEM []byte
	srv     *httptest.Server
	served  atomic.Int64 // response body bytes, packs included
	hold    atomic.Pointer[gate]
}

// gate holds requests until it opens.
type gate struct {
	arrived, open chan struct{}
	once          sync.Once
}

// Hold makes the next requests wait until release is called; arrived is
// closed once the first of them came in. Tests use it to act while a clone
// is under way.
func (s *Server) Hold() (arrived <-chan struct{}, release func()) {
	g := &gate{arrived: make(chan struct{}), open: make(chan struct{})}
	s.hold.Store(g)
	return g.arrived, func() {
		s.hold.CompareAndSwap(g, nil)
		select {
		case <-g.open:
		default:
			close(g.open)
		}
	}
}

// New starts a server for the bare repositories under dir on a free
// loopback port. Any username is accepted with the token, as hosts do with
// access tokens; user is the account the token belongs to, which git sees
// as the pusher.
func New(dir, user, token string) (*Server, error) { return Listen(dir, user, token, "127.0.0.1:0") }

// Listen is New on addr: make dev keeps one port, so the projects it keeps
// across restarts keep their URLs.
func Listen(dir, user, token, addr string) (*Server, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, user: user}
	s.token.Store(&token)
	if s.state, err = os.MkdirTemp("", "gitserver-*"); err != nil {
		return nil, err
	}
	// --exec-path, not PATH: git keeps http-backend in its own libexec
	// directory, which differs between Linux distributions and macOS.
	out, err := s.git("", "--exec-path")
	if err == nil {
		s.backend = filepath.Join(strings.TrimSpace(out), "git-http-backend")
		_, err = os.Stat(s.backend)
	}
	if err != nil {
		os.RemoveAll(s.state)
		return nil, err
	}
	// httptest's own certificate is its own root and names 127.0.0.1, which
	// is all a client needs to trust.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		os.RemoveAll(s.state)
		return nil, err
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.Listener.Close()
	s.srv.Listener = ln
	s.srv.StartTLS()
	s.certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
	if err := os.WriteFile(s.CertFile(), s.certPEM, 0o600); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close stops the server and removes its certificate file; the
// repositories stay.
func (s *Server) Close() {
	s.srv.Close()
	os.RemoveAll(s.state)
}

// URL is the clone URL of the repository <name>.git.
func (s *Server) URL(name string) string { return s.srv.URL + "/" + name + ".git" }

// CertPEM is the server's certificate, its own root.
func (s *Server) CertPEM() []byte { return s.certPEM }

// CertFile is a file holding CertPEM: SSL_CERT_FILE for a Go process on
// Linux (Go on macOS asks the system instead), GIT_SSL_CAINFO for the git
// CLI, whose curl may ignore SSL_CERT_FILE.
func (s *Server) CertFile() string { return filepath.Join(s.state, "cert.pem") }

// Client is an HTTP client that trusts the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Served is how many response bytes the server has sent: what a clone or
// fetch received.
func (s *Server) Served() int64 { return s.served.Load() }

// counter counts what a handler writes.
type counter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c counter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// SetToken replaces the accepted token, as a revocation and a new token do.
func (s *Server) SetToken(token string) { s.token.Store(&token) }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if g := s.hold.Load(); g != nil {
		g.once.Do(func() { close(g.arrived) })
		select {
		case <-g.open:
		case <-r.Context().Done():
			return
		}
	}
	_, pass, ok := r.BasicAuth()
	if !ok || subtle.ConstantTimeCompare([]byte(pass), []byte(*s.token.Load())) != 1 {
		w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
		http.Error(w, "authentication required", http.StatusUnauthorized)
		return
	}
	h := &cgi.Handler{
		Path: s.backend,
		Dir:  s.dir,
		// The backend's complaints (a missing repository) name this
		// machine's paths: the client gets the status alone.
		Stderr: io.Discard,
		Env: append(s.env(),
			"GIT_PROJECT_ROOT="+s.dir,
			"GIT_HTTP_EXPORT_ALL=1",
			"REMOTE_USER="+s.user),
	}
	h.ServeHTTP(counter{ResponseWriter: w, n: &s.served}, r)
}

// env is the whole environment of the git processes: none of this process's,
// and a HOME of their own, so a developer's git configuration plays no part.
func (s *Server) env() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + s.state, "GIT_CONFIG_NOSYSTEM=1"}
}

func (s *Server) git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir, cmd.Env = dir, s.env()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return string(out), nil
}

// NewRepo creates the bare repository <name>.git with one commit on branch
// holding files (path to content), and accepting pushes.
func (s *Server) NewRepo(name string, files map[string]string, branch string) error {
	if !filepath.IsLocal(name) {
		return fmt.Errorf("gitserver: repository name %q leaves the root", name)
	}
	work, err := os.MkdirTemp("", "gitserver-work-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	for p, content := range files {
		full := filepath.Join(work, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			return err
		}
	}
	bare := filepath.Join(s.dir, name+".git")
	for _, step := range []struct {
		dir  string
		args []string
	}{
		{work, []string{"init", "-q", "--initial-branch=" + branch}},
		{work, []string{"add", "-A"}},
		{work, []string{"-c", "user.name=" + s.user, "-c", "user.email=" + s.user + "@localhost",
			"commit", "-q", "--allow-empty", "-m", "Initial commit"}},
		{"", []string{"init", "-q", "--bare", "--initial-branch=" + branch, bare}},
		// http-backend takes pushes from an authenticated user already;
		// saying so keeps that true whatever its default becomes.
		{bare, []string{"config", "http.receivepack", "true"}},
		{work, []string{"push", "-q", bare, branch}},
	} {
		if _, err := s.git(step.dir, step.args...); err != nil {
			return err
		}
	}
	return nil
}

// ReadFile returns the content of path at the tip of branch in <name>.git.
func (s *Server) ReadFile(name, branch, path string) (string, error) {
	repo, err := git.PlainOpen(filepath.Join(s.dir, name+".git"))
	if err != nil {
		return "", err
	}
	ref, err := repo.Reference(plumbing.NewBranchReferenceName(branch), true)
	if err != nil {
		return "", err
	}
	commit, err := repo.CommitObject(ref.Hash())
	if err != nil {
		return "", err
	}
	f, err := commit.File(path)
	if err != nil {
		return "", err
	}
	return f.Contents()
}
