// Package harness is a whole service in one process, for benchmarks and
// load runs: the service as `make dev` wires it (config.Load, app.New and
// the local gateway in front of the real Lambda adapters, on a loopback
// port), over its own table in DynamoDB Local, with an in-process S3
// stand-in, the Apple stand-in and the fake Claude CLI; with what the
// commands drive and measure it by: a client that reads streams as the app
// does, a latency histogram, readings of the process's memory and its
// child processes; and the flags, the start and the report's table they
// share.
package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

	"github.com/ovrlrd/cloud/internal/app"
	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/devkit/applefake"
	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/devkit/dynamolocal"
	"github.com/ovrlrd/cloud/internal/devkit/gateway"
	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/logs"
	"github.com/ovrlrd/cloud/internal/store"
)

// Options are the settings of a Stack.
type Options struct {
	// Name names the run ("bench", "load"): it prefixes the table, the
	// temporary directories, the JWT key id and the client's User-Agent.
	Name string
	Flags
	LogOut io.Writer
	// Env is added to the service's environment (rate limits, say).
	Env map[string]string
	// DynamoDB are more options of the service's DynamoDB client.
	DynamoDB []func(*dynamodb.Options)
}

// Stack is the whole service in this process.
type Stack struct {
	App    *app.App
	Server *httptest.Server // the gateway
	Apple  *applefake.Server
	S3     *httptest.Server // the S3 stand-in for conversation workspaces
	APIKey string
	CLI    string // the fake CLI the service runs

	Endpoint string // DynamoDB Local
	Table    string

	name string
	// dbTransport is the service's DynamoDB connection pool: the SDK's
	// default transport, kept here so its idle connections can be closed
	// before resources are counted.
	dbTransport *http.Transport
	dynamo      *dynamolocal.Server // started here when none was given
	dirs        []string
}

// New builds the service; on an error, what was started is stopped again.
func New(ctx context.Context, o Options) (s *Stack, err error) {
	s = &Stack{name: o.Name, Endpoint: o.Endpoint, Table: o.Name + "-" + RandomHex(6)}
	defer func() {
		if err != nil {
			s.Close()
			s = nil
		}
	}()
	if s.Endpoint == "" {
		startCtx, cancel := context.WithTimeout(ctx, 90*time.Second)
		s.dynamo, err = dynamolocal.Start(startCtx, dynamolocal.Options{})
		cancel()
		if err != nil {
			return s, err
		}
		s.Endpoint = s.dynamo.Endpoint
	}
	if s.CLI = o.CLIPath; s.CLI == "" {
		if s.CLI, err = FakeCLI(); err != nil {
			return s, err
		}
	}
	for _, kind := range []string{"work", "claude"} {
		d, err := os.MkdirTemp("", "ovrlrd-"+o.Name+"-"+kind+"-")
		if err != nil {
			return s, err
		}
		s.dirs = append(s.dirs, d)
	}
	s.Apple = applefake.New()
	// Workspaces are saved to S3 after every turn: to a loopback stand-in
	// here, as in make dev and the tests (in this process, so its memory is
	// part of the RSS measured; it holds a few KiB per turn).
	s.S3 = httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	s.APIKey = rand.Text()
	// Nor may a turn outlive Lambda's limit, which the configuration
	// enforces; the run itself may be longer.
	timeout := min(max(o.Timeout, time.Second), 15*time.Minute).Round(time.Second)
	env := map[string]string{
		"STAGE":              "local",
		"S3_ENDPOINT":        s.S3.URL,
		"TABLE_NAME":         s.Table,
		"DYNAMODB_ENDPOINT":  s.Endpoint,
		"JWT_SECRET":         o.Name + "1:" + rand.Text() + rand.Text(),
		"API_KEY":            s.APIKey,
		"APPLE_JWKS_URL":     s.Apple.URL,
		"ALLOW_OPEN_SIGNUP":  "true",
		"LOG_LEVEL":          o.LogLevel,
		"CLAUDE_PATH":        s.CLI,
		"CLAUDE_WORK_ROOT":   s.dirs[0],
		"CLAUDE_CONFIG_ROOT": s.dirs[1],
		// No turn outlives the run.
		"CLAUDE_TIMEOUT":      timeout.String(),
		"CLAUDE_IDLE_TIMEOUT": min(timeout, 30*time.Second).String(),
	}
	for k, v := range o.Env {
		env[k] = v
	}
	cfg, err := config.Load(ctx, config.All, func(k string) string { return env[k] })
	if err != nil {
		return s, err
	}
	s.dbTransport = awshttp.NewBuildableClient().GetTransport()
	useTransport := func(o *dynamodb.Options) { o.HTTPClient = &http.Client{Transport: s.dbTransport} }
	if err := store.CreateTable(ctx, store.NewDB(localAWS(), s.Endpoint, useTransport), s.Table); err != nil {
		return s, fmt.Errorf("create table: %w", err)
	}
	logOut := o.LogOut
	if logOut == nil {
		logOut = io.Discard
	}
	s.App, err = app.New(ctx, cfg, logs.New(logOut, cfg.LogLevel), app.WithDynamoDB(append([]func(*dynamodb.Options){useTransport}, o.DynamoDB...)...))
	if err != nil {
		return s, err
	}
	if err := s.App.Workspace.EnsureBucket(ctx); err != nil {
		return s, fmt.Errorf("workspace bucket: %w", err)
	}
	s.Server = httptest.NewServer(gateway.App(s.App))
	return s, nil
}

// Grant is the body of POST /auth and POST /auth/refresh.
type Grant struct {
	SessionToken string `json:"sessionToken"`
	UserID       string `json:"userId"`
}

// NewClient is a client of the gateway, keeping up to conns idle
// connections.
func (s *Stack) NewClient(conns int) *Client {
	return NewClient(s.Server.URL, s.APIKey, "ovrlrd-"+s.name, conns)
}

// SignIn signs a new user in through POST /auth, with an identity token of
// the Apple stand-in for the subject 001122.<name>.<random> and the email
// given.
func (s *Stack) SignIn(ctx context.Context, c *Client, name, email string) (Grant, error) {
	idt := s.Apple.Mint(applefake.Claims{Subject: "001122." + name + "." + RandomHex(4), Email: email, EmailVerified: true})
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

// NewConversation creates a conversation of the user straight in the table
// (set-up, not measured), so that every turn can have its own lease.
func (s *Stack) NewConversation(ctx context.Context, userID string) (string, error) {
	c, _, err := storetest.NewConversation(ctx, s.App.Store, userID, s.name)
	return c.ID, err
}

// CloseIdle drops every idle keep-alive connection the stack holds: the
// service's to DynamoDB Local (client side), and the connections to the
// gateway and the S3 stand-in (server side, which the clients' transports
// then drop too). Call it only when no request is in flight.
func (s *Stack) CloseIdle() {
	s.dbTransport.CloseIdleConnections()
	s.Server.CloseClientConnections()
	s.S3.CloseClientConnections()
}

// Close stops everything the stack started, in order: the HTTP server
// (which waits for the requests in flight, so for their turns), the
// background turns, the stand-ins, the table and DynamoDB Local if started
// here.
func (s *Stack) Close() {
	if s.Server != nil {
		s.Server.Close()
	}
	if s.App != nil {
		s.App.Close()
	}
	if s.Apple != nil {
		s.Apple.Close()
	}
	if s.S3 != nil {
		s.S3.Close()
	}
	if s.Table != "" && s.Endpoint != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = store.NewDB(localAWS(), s.Endpoint).Table(s.Table).DeleteTable().Run(ctx)
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

// RandomHex is n random bytes in hex.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// FakeCLI builds the fake CLI through claudetest, which caches it by
// the hash of its source. claudetest reports through a testing.TB; outside
// a test, this one records the failure instead of ending the goroutine.
func FakeCLI() (string, error) {
	var tb fakeTB
	path := claudetest.FakeCLI(&tb)
	if tb.err != nil {
		return "", tb.err
	}
	if path == "" {
		return "", errors.New("the fake CLI was not built")
	}
	return path, nil
}

// fakeTB is the part of testing.TB that claudetest.FakeCLI uses (Helper and
// Fatalf); any other method would panic on the nil embedded TB.
type fakeTB struct {
	testing.TB
	err error
}

func (*fakeTB) Helper() {}
func (t *fakeTB) Fatalf(format string, args ...any) {
	t.err = fmt.Errorf(format, args...)
}
