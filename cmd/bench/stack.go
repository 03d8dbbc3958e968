package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

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
	endpoint, table   string
	// The service's DynamoDB pool, whose idle connections are closed
	// before resources are counted.
	dbTransport *http.Transport
	dynamo      *dynamolocal.Server
	dirs        []string
}

// newStack builds the service; on an error, what was started is stopped
// again. name names the table, the folders, the JWT key and the client.
func newStack(ctx context.Context, o *options, name string, logOut io.Writer, extraEnv map[string]string, db ...func(*dynamodb.Options)) (s *stack, err error) {
	s = &stack{name: name, endpoint: os.Getenv("DYNAMODB_ENDPOINT"), table: name + "-" + randomHex(6)}
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
		s.dynamo, err = dynamolocal.Start(startCtx, dynamolocal.Options{})
		cancel()
		if err != nil {
			return s, err
		}
		s.endpoint = s.dynamo.Endpoint
	}
	for _, kind := range []string{"work", "claude"} {
		d, err := os.MkdirTemp("", "ovrlrd-"+name+"-"+kind+"-")
		if err != nil {
			return s, err
		}
		s.dirs = append(s.dirs, d)
	}
	s.apple = applefake.New()
	// In this process, so its few KiB per turn are part of the RSS measured.
	s.s3 = httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	s.apiKey = rand.Text()
	// No turn outlives the run, nor Lambda's limit, which the configuration
	// enforces.
	timeout := min(max(o.timeout, time.Second), 15*time.Minute).Round(time.Second)
	env := map[string]string{
		"STAGE":               "local",
		"S3_ENDPOINT":         s.s3.URL,
		"TABLE_NAME":          s.table,
		"DYNAMODB_ENDPOINT":   s.endpoint,
		"JWT_SECRET":          name + "1:" + rand.Text() + rand.Text(),
		"API_KEY":             s.apiKey,
		"APPLE_JWKS_URL":      s.apple.URL,
		"ALLOW_OPEN_SIGNUP":   "true",
		"LOG_LEVEL":           o.logLevel,
		"CLAUDE_PATH":         s.cli,
		"CLAUDE_WORK_ROOT":    s.dirs[0],
		"CLAUDE_CONFIG_ROOT":  s.dirs[1],
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
	if err := dynamolocal.CreateTable(ctx, store.NewDB(localAWS(), s.endpoint, useTransport), s.table); err != nil {
		return s, fmt.Errorf("create table: %w", err)
	}
	s.app, err = gateway.NewStack(ctx, cfg, logs.New(logOut, cfg.LogLevel),
		gateway.Options{DynamoDB: append([]func(*dynamodb.Options){useTransport}, db...)})
	if err != nil {
		return s, err
	}
	if err := s.app.Chat.Workspace.EnsureBucket(ctx); err != nil {
		return s, fmt.Errorf("workspace bucket: %w", err)
	}
	s.server = httptest.NewServer(s.app.Handler())
	return s, nil
}

// Grant is the body of POST /auth and POST /auth/refresh.
type Grant struct {
	SessionToken string `json:"sessionToken"`
	UserID       string `json:"userId"`
}

// newClient is a client of the gateway, keeping up to conns idle
// connections.
func (s *stack) newClient(conns int) *Client {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, DisableCompression: true, IdleConnTimeout: 30 * time.Second}
	return &Client{base: s.server.URL, apiKey: s.apiKey, agent: "ovrlrd-" + s.name, HTTP: &http.Client{Transport: tr}}
}

// signIn signs a new user in through POST /auth, with an identity token
// of the Apple stand-in.
func (s *stack) signIn(ctx context.Context, c *Client, name string) (Grant, error) {
	idt := s.apple.Mint(applefake.Claims{Subject: "001122." + name + "." + randomHex(4), Email: name + "@example.com", EmailVerified: true})
	b, _ := json.Marshal(map[string]string{"identityToken": idt})
	var g Grant
	status, body, err := c.Call(ctx, http.MethodPost, "/auth", string(b), "", true)
	if err != nil {
		return g, err
	}
	if status != http.StatusOK {
		return g, fmt.Errorf("POST /auth: %d %s", status, body)
	}
	if err := json.Unmarshal(body, &g); err != nil || g.SessionToken == "" {
		return g, fmt.Errorf("POST /auth: unexpected body %.200s", body)
	}
	return g, nil
}

// newConversation creates a conversation straight in the table (set-up,
// not measured), so that every turn can have its own lease.
func (s *stack) newConversation(ctx context.Context, userID string) (string, error) {
	c, _, err := storetest.NewConversation(ctx, s.app.Store, userID, s.name)
	return c.ID, err
}

// closeIdle drops every idle keep-alive connection: the service's to
// DynamoDB Local, and (server side) those to the gateway and the S3
// stand-in. Call it only when no request is in flight.
func (s *stack) closeIdle() {
	s.dbTransport.CloseIdleConnections()
	s.server.CloseClientConnections()
	s.s3.CloseClientConnections()
}

// close stops everything the stack started; the server first, which waits
// for the requests in flight, so for their turns.
func (s *stack) close() {
	if s.server != nil {
		s.server.Close()
	}
	if s.app != nil {
		s.app.Close()
	}
	if s.apple != nil {
		s.apple.Close()
	}
	if s.s3 != nil {
		s.s3.Close()
	}
	if s.table != "" && s.endpoint != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = store.NewDB(localAWS(), s.endpoint).Table(s.table).DeleteTable().Run(ctx)
		cancel()
	}
	if s.dynamo != nil {
		s.dynamo.Stop()
	}
	for _, d := range s.dirs {
		_ = os.RemoveAll(d)
	}
}

func localAWS() aws.Config {
	return aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
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
