package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ovrlrd/cloud/internal/app"
	"github.com/ovrlrd/cloud/internal/apple/applefake"
	"github.com/ovrlrd/cloud/internal/claude/claudetest"
	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/dynamolocal"
	"github.com/ovrlrd/cloud/internal/logs"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/store"
)

// stack is the whole service as `make dev` serves it (config.Load, app.New,
// the local gateway in front of the real Lambda adapters) on a loopback
// port, over its own table in DynamoDB Local, with the fake CLI.
type stack struct {
	app    *app.App
	srv    *httptest.Server
	apple  *applefake.Server
	client *client
	userID string
	db     dbTimer
	s3     *httptest.Server // the S3 stand-in for conversation workspaces

	endpoint string
	table    string
	dynamo   *dynamolocal.Server // started here when none was given
	dirs     []string
}

// startStack builds the service. endpoint is DynamoDB Local's URL; when
// empty, one is started for the run.
func startStack(ctx context.Context, o *options, logOut io.Writer) (s *stack, err error) {
	s = &stack{endpoint: o.endpoint, table: "bench-" + randomHex(6)}
	defer func() {
		if err != nil {
			s.close()
			s = nil
		}
	}()
	if s.endpoint == "" {
		startCtx, cancel := context.WithTimeout(ctx, 90*time.Second)
		s.dynamo, err = dynamolocal.Start(startCtx, dynamolocal.Options{})
		cancel()
		if err != nil {
			return s, err
		}
		s.endpoint = s.dynamo.Endpoint
	}
	cli := o.cliPath
	if cli == "" {
		if cli, err = buildFakeCLI(); err != nil {
			return s, err
		}
	}
	work, err := os.MkdirTemp("", "ovrlrd-bench-work-")
	if err != nil {
		return s, err
	}
	s.dirs = append(s.dirs, work)
	cfgRoot, err := os.MkdirTemp("", "ovrlrd-bench-claude-")
	if err != nil {
		return s, err
	}
	s.dirs = append(s.dirs, cfgRoot)

	s.apple = applefake.New()
	// Workspaces are saved to S3 after every turn: to a loopback stand-in
	// here, as in make dev and the tests (in this process, so its memory is
	// part of the RSS measured; it holds a few KiB per turn).
	s.s3 = httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	apiKey := rand.Text()
	env := map[string]string{
		"STAGE":              "local",
		"S3_ENDPOINT":        s.s3.URL,
		"TABLE_NAME":         s.table,
		"DYNAMODB_ENDPOINT":  s.endpoint,
		"JWT_SECRET":         "bench1:" + rand.Text() + rand.Text(),
		"API_KEY":            apiKey,
		"APPLE_JWKS_URL":     s.apple.URL,
		"ALLOW_OPEN_SIGNUP":  "true",
		"LOG_LEVEL":          o.logLevel,
		"CLAUDE_PATH":        cli,
		"CLAUDE_WORK_ROOT":   work,
		"CLAUDE_CONFIG_ROOT": cfgRoot,
		// No turn outlives the run by more than the run's own length.
		"CLAUDE_TIMEOUT":      max(o.timeout, time.Second).Round(time.Second).String(),
		"CLAUDE_IDLE_TIMEOUT": min(max(o.timeout, time.Second), 30*time.Second).Round(time.Second).String(),
		// The bench starts far more turns a minute than a person would.
		"RATE_LIMIT_TURN":  "999999/1m",
		"RATE_LIMIT_READ":  "999999/1m",
		"RATE_LIMIT_WRITE": "999999/1m",
	}
	cfg, err := config.Load(ctx, config.All, func(k string) string { return env[k] })
	if err != nil {
		return s, err
	}
	if err := store.CreateTable(ctx, store.NewDB(localAWS(), s.endpoint), s.table); err != nil {
		return s, fmt.Errorf("create table: %w", err)
	}
	s.app, err = app.New(ctx, cfg, logs.New(logOut, cfg.LogLevel), app.WithDynamoDB(s.db.option()))
	if err != nil {
		return s, err
	}
	if err := s.app.Workspace.EnsureBucket(ctx); err != nil {
		return s, fmt.Errorf("workspace bucket: %w", err)
	}
	s.srv = httptest.NewServer(s.app.Gateway())
	s.client = newClient(s.srv.URL, apiKey)
	idt := s.apple.Mint(applefake.Claims{Subject: "001122.bench." + randomHex(4), Email: "bench@example.com", EmailVerified: true})
	if s.userID, err = s.client.signIn(ctx, idt); err != nil {
		return s, err
	}
	return s, nil
}

// conversation creates a conversation for a turn, straight in the table
// (set-up, not measured), so every turn has its own lease.
func (s *stack) conversation(ctx context.Context) (string, error) {
	c, _, err := s.app.Store.CreateConversation(ctx, s.userID, &ovrlrd.NewMessage{Role: ovrlrd.RoleUser, Content: "bench"})
	return c.ID, err
}

// close stops everything the stack started, in order: the HTTP server
// (which waits for the requests in flight, so for their turns), the
// background turns, the stand-ins, the table and DynamoDB Local if started
// here.
func (s *stack) close() {
	if s.srv != nil {
		s.client.http.CloseIdleConnections()
		s.srv.Close()
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

// buildFakeCLI builds the fake CLI through claudetest, which caches it by
// the hash of its source. claudetest reports through a testing.TB; outside
// a test, this one records the failure instead of ending the goroutine.
func buildFakeCLI() (string, error) {
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
