package config_test

import (
	"context"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/devkit/ssmfake"
)

// These tests go through Load, which builds the SDK client from the process
// environment, so they set it with t.Setenv and cannot run in parallel.

func awsEnv(t *testing.T, endpoint string) {
	t.Helper()
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           "AKIDTEST",
		"AWS_SECRET_ACCESS_KEY":       "test-secret",
		"AWS_SESSION_TOKEN":           "",
		"AWS_PROFILE":                 "",
		"AWS_REGION":                  "eu-west-1",
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_CONFIG_FILE":             filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_MAX_ATTEMPTS":            "",
		"AWS_ENDPOINT_URL_SSM":        endpoint,
	} {
		t.Setenv(k, v)
	}
}

func fakeSSM(t *testing.T, params map[string]string) *ssmfake.Server {
	t.Helper()
	srv := ssmfake.New(params)
	t.Cleanup(srv.Close)
	awsEnv(t, srv.URL)
	return srv
}

func TestLoadFromSSMInOneCall(t *testing.T) {
	srv := fakeSSM(t, prodParams())
	c, err := config.Load(context.Background(), config.Stream, getenv(prodEnv()))
	if err != nil {
		t.Fatal(err)
	}
	if c.JWTKeys.Signing().ID != "k2" || c.APIKey.Reveal() != apiKey || c.Claude.Credential.Reveal() != claudeKey {
		t.Error("secrets not loaded")
	}
	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d GetParameters calls, want 1", len(reqs))
	}
	want := []string{prefix + "/jwt-keys", prefix + "/api-key", prefix + "/anthropic-api-key", prefix + "/apns-key", prefix + "/origin-secret", prefix + "/origin-secret-previous"}
	if !slices.Equal(reqs[0].Names, want) || !reqs[0].WithDecryption {
		t.Errorf("request %+v, want names %v with decryption", reqs[0], want)
	}
}

func TestLoadRequestsOnlyWhatTheFunctionNeeds(t *testing.T) {
	for _, fn := range []config.Function{config.Auth, config.Chat} {
		srv := fakeSSM(t, prodParams())
		if _, err := config.Load(context.Background(), fn, getenv(prodEnv())); err != nil {
			t.Fatal(err)
		}
		reqs := srv.Requests()
		if want := []string{prefix + "/jwt-keys", prefix + "/api-key"}; len(reqs) != 1 || !slices.Equal(reqs[0].Names, want) {
			t.Errorf("%s requested %+v, want %v", fn, reqs, want)
		}
	}
}

func TestLoadInvalidRequiredParameter(t *testing.T) {
	fakeSSM(t, prodParams(prefix+"/jwt-keys", ""))
	_, err := config.Load(context.Background(), config.Stream, getenv(prodEnv()))
	wantAll(t, problems(t, err), "secret jwt-keys: missing (SSM parameter "+prefix+"/jwt-keys)")
}

func TestLoadInvalidOptionalParameter(t *testing.T) {
	fakeSSM(t, prodParams(prefix+"/apns-key", "", prefix+"/origin-secret", ""))
	c, err := config.Load(context.Background(), config.Stream, getenv(prodEnv()))
	if err != nil {
		t.Fatal(err)
	}
	if c.PushEnabled() || len(c.OriginSecrets) > 0 {
		t.Error("absent optional parameters reported as configured")
	}
}

func TestLoadThrottledThenSucceeds(t *testing.T) {
	srv := fakeSSM(t, prodParams())
	srv.Throttle(1)
	if _, err := config.Load(context.Background(), config.Stream, getenv(prodEnv())); err != nil {
		t.Fatal(err)
	}
	if srv.Calls() != 2 {
		t.Errorf("%d calls, want 2 (one throttled, one served)", srv.Calls())
	}
}

func TestLoadSSMUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	awsEnv(t, "http://"+addr)

	start := time.Now()
	_, err = config.Load(context.Background(), config.Stream, getenv(prodEnv()))
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	text := problems(t, err)
	t.Log(text)
	for _, name := range []string{"jwt-keys", "api-key", "anthropic-api-key", "apns-key", "origin-secret"} {
		wantAll(t, text, prefix+"/"+name)
	}
}

// A server that accepts but never answers must not hold init beyond its
// deadline either.
func TestLoadSSMHangs(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the per-attempt timeouts")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	awsEnv(t, "http://"+l.Addr().String())

	start := time.Now()
	_, err = config.Load(context.Background(), config.Auth, getenv(prodEnv()))
	if d := time.Since(start); d > config.InitTimeout+time.Second {
		t.Errorf("took %v, want at most %v", d, config.InitTimeout)
	}
	text := problems(t, err)
	t.Log(text)
	wantAll(t, text, prefix+"/jwt-keys", prefix+"/api-key")
}

func TestLoadLocalMakesNoSSMCall(t *testing.T) {
	srv := fakeSSM(t, prodParams())
	if _, err := config.Load(context.Background(), config.All, getenv(localEnv())); err != nil {
		t.Fatal(err)
	}
	if srv.Calls() != 0 {
		t.Errorf("%d SSM calls in local", srv.Calls())
	}
}
