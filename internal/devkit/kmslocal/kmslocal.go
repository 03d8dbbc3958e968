// Package kmslocal runs local-kms (github.com/nsmithuk/local-kms, a Go
// program that speaks the AWS KMS JSON protocol with real AES keys) as a
// child process, so tests exercise the real aws-sdk-go-v2 KMS client against
// a KMS-compatible server instead of a hand-written fake. Test support only.
package kmslocal

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/ovrlrd/cloud/internal/devkit/devenv"
)

// Module and Version pin local-kms; the Makefile's LOCAL_KMS_VERSION is the
// same (a test checks).
const (
	Module  = "github.com/nsmithuk/local-kms"
	Version = "v0.0.0-20260228092603-2a5e92d09ab6"
)

// The account and region the server claims; key ARNs carry them.
const (
	Region    = "us-east-1"
	AccountID = "111122223333"
)

// startTimeout bounds the wait for the server to listen.
const startTimeout = 30 * time.Second

// Server is a running local-kms with one symmetric key created in it.
type Server struct {
	endpoint string
	keyID    string
	client   *kms.Client
	cmd      *exec.Cmd
	done     chan struct{} // closed once the process has exited
	dir      string
	out      *output
	stop     sync.Once
}

// Start runs the local-kms binary bin on a free loopback port, with its data
// in a fresh temporary folder, waits until it answers (at most until ctx
// ends, or 30 s), and creates a symmetric encryption key in it.
func Start(ctx context.Context, bin string) (*Server, error) {
	dir, err := os.MkdirTemp("", "kmslocal-")
	if err != nil {
		return nil, fmt.Errorf("kmslocal: %w", err)
	}
	s := &Server{dir: dir, done: make(chan struct{}), out: &output{port: make(chan int, 1)}}
	s.cmd = exec.Command(bin)
	// Only what local-kms reads: PORT 0 lets it pick a free port, which it
	// logs; a seed path that does not exist skips seeding (its default is
	// /init/seed.yaml, whatever that machine holds there).
	s.cmd.Env = []string{
		"PORT=0",
		"KMS_REGION=" + Region,
		"KMS_ACCOUNT_ID=" + AccountID,
		"KMS_DATA_PATH=" + filepath.Join(dir, "data"),
		"KMS_SEED_PATH=" + filepath.Join(dir, "no-seed.yaml"),
	}
	s.cmd.Stdout = s.out
	s.cmd.Stderr = s.out
	setParentDeathSignal(s.cmd)
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("kmslocal: start %s: %w", bin, err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	if err := s.start(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	var port int
	select {
	case port = <-s.out.port:
	case <-s.done:
		return fmt.Errorf("kmslocal: local-kms exited during start-up: %s", s.out.String())
	case <-ctx.Done():
		return fmt.Errorf("kmslocal: local-kms did not listen in time: %w: %s", ctx.Err(), s.out.String())
	}
	// It listens on every interface; we talk to it on loopback only. The
	// log line comes after the listener is bound, so one dial must answer.
	addr := devenv.Loopback(port)
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("kmslocal: local-kms does not answer on %s: %w", addr, err)
	}
	conn.Close()
	s.endpoint = "http://" + addr
	s.client = kms.New(kms.Options{
		Region:       Region,
		BaseEndpoint: &s.endpoint,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDLOCALKMS", "local-kms-secret", ""),
	})
	out, err := s.client.CreateKey(ctx, &kms.CreateKeyInput{
		KeySpec:     types.KeySpecSymmetricDefault,
		KeyUsage:    types.KeyUsageTypeEncryptDecrypt,
		Description: aws.String("kmslocal test key"),
	})
	if err != nil {
		return fmt.Errorf("kmslocal: create key: %w", err)
	}
	if out.KeyMetadata == nil || out.KeyMetadata.KeyId == nil {
		return errors.New("kmslocal: create key: no key ID in the answer")
	}
	s.keyID = *out.KeyMetadata.KeyId
	return nil
}

// Endpoint is the server's URL, http://127.0.0.1:PORT.
func (s *Server) Endpoint() string { return s.endpoint }

// KeyID is the ID of the symmetric key Start created.
func (s *Server) KeyID() string { return s.keyID }

// Client is a KMS client for the server, with static test credentials.
func (s *Server) Client() *kms.Client { return s.client }

// Output is what local-kms has logged so far.
func (s *Server) Output() string { return s.out.String() }

// Close kills the server, waits for it to exit and removes its data; later
// calls return at once.
func (s *Server) Close() {
	s.stop.Do(func() {
		_ = s.cmd.Process.Kill()
		<-s.done
		os.RemoveAll(s.dir)
	})
}

// Bin is <module root>/build/tools/local-kms, the pinned version, which
// `make test` installs; when it is missing or another version it is built
// there with go install, so go test works without make too.
func Bin() (string, error) {
	root, err := devenv.ModuleRoot()
	if err != nil {
		return "", fmt.Errorf("kmslocal: %w", err)
	}
	tools := filepath.Join(root, "build", "tools")
	bin := filepath.Join(tools, "local-kms")
	if info, err := buildinfo.ReadFile(bin); err == nil && info.Main.Path == Module && info.Main.Version == Version {
		return bin, nil
	}
	if err := os.MkdirAll(tools, 0o755); err != nil {
		return "", fmt.Errorf("kmslocal: %w", err)
	}
	// Installed in a folder of its own, then renamed into place: test
	// binaries of other packages may be doing the same at the same time,
	// or running the binary already there.
	gobin, err := os.MkdirTemp(tools, ".local-kms-")
	if err != nil {
		return "", fmt.Errorf("kmslocal: %w", err)
	}
	defer os.RemoveAll(gobin)
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("kmslocal: %s is missing and go is not on PATH to build it: %w", bin, err)
	}
	cmd := exec.Command(goCmd, "install", Module+"@"+Version)
	cmd.Dir = gobin
	cmd.Env = append(os.Environ(), "GOBIN="+gobin)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("kmslocal: go install %s@%s: %w\n%s", Module, Version, err, out)
	}
	if err := os.Rename(filepath.Join(gobin, "local-kms"), bin); err != nil {
		return "", fmt.Errorf("kmslocal: %w", err)
	}
	return bin, nil
}

// startedRE matches the line local-kms logs once it listens, e.g.
// "Local KMS started on 0.0.0.0:41234".
var startedRE = regexp.MustCompile(`Local KMS started on [^\s]*:([0-9]+)`)

// output keeps what the server writes and reports the port it logs.
type output struct {
	mu   sync.Mutex
	b    bytes.Buffer
	port chan int // gets the port once
	sent bool
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.b.Write(p)
	if !o.sent {
		if m := startedRE.FindSubmatch(o.b.Bytes()); m != nil {
			if port, err := strconv.Atoi(string(m[1])); err == nil && port > 0 && port < 1<<16 {
				o.sent = true
				o.port <- port
			}
		}
	}
	return len(p), nil
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}
