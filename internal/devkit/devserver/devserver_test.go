package devserver

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/devkit/devenv"
	"github.com/ovrlrd/cloud/internal/devkit/sandboxtest"
)

// make dev, end to end: first run generates secrets and answers /health
// from DynamoDB Local; a second run over the same folder keeps the data and
// the secrets.
func TestDevServesHealth(t *testing.T) {
	dir := sandboxtest.Dir(t)
	var firstKey string
	for i, wantCreated := range []bool{true, false} {
		// Any free ports, bound by whoever listens: packages' tests run
		// in parallel, and a port picked before it is bound can be picked
		// twice.
		env := map[string]string{"DEV_DATA_DIR": dir, "LISTEN_ADDR": "127.0.0.1:0", "DEV_DYNAMODB_PORT": "0", "DEV_S3_PORT": "0", "DEV_GIT_PORT": "0"}
		ctx, cancel := context.WithCancel(context.Background())
		out := &devenv.Buffer{}
		done := make(chan error, 1)
		ready := make(chan Info, 1)
		go func() {
			done <- Run(ctx, Options{Getenv: func(k string) string { return env[k] }, Out: out, Ready: func(i Info) { ready <- i }})
		}()

		var status int
		var info Info
		select {
		case info = <-ready:
			status = healthStatus(t, "http://"+info.Addr+"/health")
		case err := <-done:
			t.Fatalf("run %d: dev stopped before serving: %v", i, err)
		}
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
		if info.APIKey != firstKey {
			t.Fatalf("run %d: Ready reports API key %q, want the generated one", i, info.APIKey)
		}
	}
	info, err := os.Stat(filepath.Join(dir, "secrets.env"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("secrets file mode: %v %v", info.Mode(), err)
	}
}

func healthStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
