package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/devkit/applefake"
	"github.com/ovrlrd/cloud/internal/devkit/devenv"
	"github.com/ovrlrd/cloud/internal/devkit/gateway"
	"github.com/ovrlrd/cloud/internal/devkit/stacktest"
	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/logs"
)

const apiKey = "k+/=test-api-key-0123456789"

// allLogs is everything every app of this package logged: the leak scan
// reads it after the other tests ran.
var allLogs devenv.Buffer

// stack is the whole API behind the local gateway, as `make dev` serves it.
type stack struct {
	*httptest.Server
	app   *gateway.Stack
	apple *applefake.Server
	calls *storetest.CallCounter // DynamoDB calls made by the app
	s3    string                 // the S3 stand-in's URL
}

// newStack builds the functions exactly as main does (config.Load, their
// constructors) from a
// local configuration on this package's table. Each stack has its own JWT
// key, so its address-hash rate-limit buckets are its own.
func newStack(t *testing.T, overrides ...string) *stack {
	return newStackWith(t, gateway.Options{}, overrides...)
}

// newStackWith is newStack with options.
func newStackWith(t *testing.T, opts gateway.Options, overrides ...string) *stack {
	t.Helper()
	fake := applefake.New()
	t.Cleanup(fake.Close)
	s3 := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(s3.Close)
	env := stacktest.Env(t, s3.URL, fake.URL, apiKey, overrides...)
	ctx := context.Background()
	cfg, err := config.Load(ctx, config.All, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	calls := &storetest.CallCounter{}
	opts.DynamoDB = append(opts.DynamoDB, calls.Option())
	a, err := gateway.NewStack(ctx, cfg, logs.New(&allLogs, cfg.LogLevel), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	if err := a.Chat.Workspace.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return &stack{Server: srv, app: a, apple: fake, calls: calls, s3: s3.URL}
}

// faulting is the DynamoDB option of a stack whose calls f fails.
func faulting(f *storetest.Fault) []func(*dynamodb.Options) {
	return []func(*dynamodb.Options){f.Option()}
}

// newApp is a stack's App alone, for calling handlers directly.
func newApp(t *testing.T) *gateway.Stack { return newStack(t).app }

type response struct {
	status int
	header http.Header
	body   string
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

// call sends what the app sends: the API key and a JSON content type on
// every request, a bearer token when it has one.
func (s *stack) call(t *testing.T, method, path, body, bearer string, extra ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	remember(bearer)
	rememberJSON(body, true)
	req.Header.Set("X-API-Key", apiKey)
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	rememberJSON(string(b), false)
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}
