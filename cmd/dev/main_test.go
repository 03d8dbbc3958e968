package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/devenv"
	"github.com/ovrlrd/cloud/internal/devkit/sandboxtest"
)

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	addr, err := devenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// make dev, end to end: first run generates secrets and answers /health
// from DynamoDB Local; a second run over the same folder keeps the data and
// the secrets.
func TestDevServesHealth(t *testing.T) {
	dir := sandboxtest.Dir(t)
	var firstKey string
	for i, wantCreated := range []bool{true, false} {
		addr := freeAddr(t)
		// Any free ports: packages' tests run in parallel.
		env := map[string]string{"DEV_DATA_DIR": dir, "LISTEN_ADDR": addr, "DEV_DYNAMODB_PORT": "0", "DEV_S3_PORT": "0"}
		ctx, cancel := context.WithCancel(context.Background())
		out := &syncBuffer{}
		done := make(chan error, 1)
		go func() { done <- run(ctx, func(k string) string { return env[k] }, out) }()

		status := waitHealth(t, "http://"+addr+"/health", done)
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if status != 200 {
			t.Fatalf("run %d: /health = %d", i, status)
		}
		if got := strings.Contains(out.String(), "Generated local secrets"); got != wantCreated {
			t.Fatalf("run %d: generated=%v, output:\n%s", i, got, out.String())
		}
		secrets, err := readEnvFile(filepath.Join(dir, "secrets.env"))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			firstKey = secrets["API_KEY"]
		}
		if secrets["API_KEY"] == "" || secrets["API_KEY"] != firstKey || !strings.Contains(out.String(), firstKey) {
			t.Fatalf("run %d: API key not kept or not printed", i)
		}
	}
	info, err := os.Stat(filepath.Join(dir, "secrets.env"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("secrets file mode: %v %v", info.Mode(), err)
	}
}

// waitHealth polls url until it answers. If dev stops first, its error
// goes back into done for whoever waits on it next.
func waitHealth(t *testing.T, url string, done chan error) int {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("dev stopped early: %v", err)
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return resp.StatusCode
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("dev did not answer in time")
	return 0
}
