package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ovrlrd/cloud/internal/auth"
	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/devkit/applefake"
	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/devkit/dynamolocal"
	"github.com/ovrlrd/cloud/internal/devkit/gateway"
	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/logs"
	"github.com/ovrlrd/cloud/internal/store"
)

// stack is the whole service in this process as `make dev` wires it,
// behind the local gateway on a loopback port, over its own table in
// DynamoDB Local (the one at DYNAMODB_ENDPOINT, else one started here),
// with loopback stand-ins for S3 and Apple and the fake Claude CLI.
type stack struct {
	app               *gateway.Stack
	server, s3        *httptest.Server
	apple             *applefake.Server
	name, apiKey, cli string
	jwtKeys           string // JWT_SECRET
	endpoint, table   string
	// The service's DynamoDB pool, whose idle connections are closed
	// before resources are counted.
	dbTransport *http.Transport
	client      *http.Client // the app's, over one keep-alive pool
	closers     []func()     // run last first
}

// newStack builds the service; on an error, what was started is stopped
// again. name names the table, the folders, the JWT key and the client.
func newStack(ctx context.Context, o *options, name string, logOut io.Writer, extraEnv map[string]string, db ...func(*dynamodb.Options)) (s *stack, err error) {
	s = &stack{name: name, endpoint: os.Getenv("DYNAMODB_ENDPOINT"), table: name + "-" + rand.Text()[:12]}
	defer func() {
		if err != nil {
			s.close()
			s = nil
		}
	}()
	if s.cli = o.cli; s.cli == "" {
		s.cli = claudetest.FakeCLI(exitTB{})
	}
	if s.endpoint == "" {
		startCtx, cancel := context.WithTimeout(ctx, 90*time.Second)
		dynamo, err := dynamolocal.Start(startCtx, dynamolocal.Options{})
		cancel()
		if err != nil {
			return s, err
		}
		s.closers = append(s.closers, dynamo.Stop)
		s.endpoint = dynamo.Endpoint
	}
	// Each its own: the sandbox opens a root to the turns' users.
	var dirs []string
	for _, kind := range []string{"work", "claude"} {
		d, err := os.MkdirTemp("", "ovrlrd-"+name+"-"+kind+"-")
		if err != nil {
			return s, err
		}
		s.closers = append(s.closers, func() { _ = os.RemoveAll(d) })
		dirs = append(dirs, d)
	}
	s.apple = applefake.New()
	// In this process, so its few KiB per turn are part of the RSS measured.
	s.s3 = httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	s.closers = append(s.closers, s.apple.Close, s.s3.Close)
	s.apiKey, s.jwtKeys = rand.Text(), name+"1:"+rand.Text()+rand.Text()
	// No turn outlives the run, nor Lambda's limit, which the configuration
	// enforces.
	timeout := min(max(o.timeout, time.Second), 15*time.Minute).Round(time.Second)
	env := map[string]string{
		"STAGE":               "local",
		"S3_ENDPOINT":         s.s3.URL,
		"TABLE_NAME":          s.table,
		"DYNAMODB_ENDPOINT":   s.endpoint,
		"JWT_SECRET":          s.jwtKeys,
		"API_KEY":             s.apiKey,
		"APPLE_JWKS_URL":      s.apple.URL,
		"ALLOW_OPEN_SIGNUP":   "true",
		"LOG_LEVEL":           o.logLevel,
		"CLAUDE_PATH":         s.cli,
		"CLAUDE_WORK_ROOT":    dirs[0],
		"CLAUDE_CONFIG_ROOT":  dirs[1],
		"CLAUDE_TIMEOUT":      timeout.String(),
		"CLAUDE_IDLE_TIMEOUT": min(timeout, 30*time.Second).String(),
	}
	maps.Copy(env, extraEnv)
	cfg, err := config.Load(ctx, config.All, func(k string) string { return env[k] })
	if err != nil {
		return s, err
	}
	s.dbTransport = awshttp.NewBuildableClient().GetTransport()
	useTransport := func(o *dynamodb.Options) { o.HTTPClient = &http.Client{Transport: s.dbTransport} }
	tables := store.NewDB(storetest.AWSConfig(), s.endpoint)
	if err := dynamolocal.CreateTable(ctx, tables, s.table); err != nil {
		return s, fmt.Errorf("create table: %w", err)
	}
	s.closers = append(s.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = tables.Table(s.table).DeleteTable().Run(ctx)
	})
	s.app, err = gateway.NewStack(ctx, cfg, logs.New(logOut, cfg.LogLevel),
		gateway.Options{DynamoDB: append([]func(*dynamodb.Options){useTransport}, db...)})
	if err != nil {
		return s, err
	}
	// Closed before the stand-ins and the table: it waits for the turns
	// that finish in the background.
	s.closers = append(s.closers, s.app.Close)
	if err := s.app.Chat.Workspace.EnsureBucket(ctx); err != nil {
		return s, fmt.Errorf("workspace bucket: %w", err)
	}
	// Closed first, it waits for the requests in flight, so for their turns.
	s.server = httptest.NewServer(s.app.Handler())
	s.closers = append(s.closers, s.server.Close)
	s.client = &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: 64 + o.turns + o.workers, DisableCompression: true, IdleConnTimeout: 30 * time.Second}}
	return s, nil
}

// signIn signs a new user in through POST /auth, with an identity token
// of the Apple stand-in.
func (s *stack) signIn(ctx context.Context, name string) (auth.Grant, error) {
	idt := s.apple.Mint(applefake.Claims{Subject: "001122." + name + "." + rand.Text()[:8], Email: name + "@example.com", EmailVerified: true})
	b, _ := json.Marshal(map[string]string{"identityToken": idt})
	status, body, err := s.Call(ctx, http.MethodPost, "/auth", string(b), "")
	var g auth.Grant
	if err == nil && (status != http.StatusOK || json.Unmarshal(body, &g) != nil || g.SessionToken == "") {
		err = fmt.Errorf("POST /auth: %d %.200s", status, body)
	}
	return g, err
}

// newConversation creates a conversation straight in the table (set-up,
// not measured), so that every turn can have its own lease.
func (s *stack) newConversation(ctx context.Context, userID string) (string, error) {
	c, _, err := storetest.NewConversation(ctx, s.app.Store, userID, s.name)
	return c.ID, err
}

// closeIdle drops every idle keep-alive connection: the client's, the
// service's to DynamoDB Local, and (server side) those to the gateway and
// the S3 stand-in. Call it only when no request is in flight.
func (s *stack) closeIdle() {
	s.client.CloseIdleConnections()
	s.dbTransport.CloseIdleConnections()
	s.server.CloseClientConnections()
	s.s3.CloseClientConnections()
}

// close stops everything the stack started.
func (s *stack) close() {
	for _, c := range slices.Backward(s.closers) {
		c()
	}
}

// exitTB is what claudetest.FakeCLI reports a failed build to; it is
// called before anything runs that would need stopping. Any method but
// Helper and Fatalf would panic on the nil embedded TB.
type exitTB struct{ testing.TB }

func (exitTB) Helper() {}
func (exitTB) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(1)
}
