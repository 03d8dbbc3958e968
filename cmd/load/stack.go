package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
	"github.com/ovrlrd/cloud/internal/apple/applefake"
	"github.com/ovrlrd/cloud/internal/claude/claudetest"
	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/dynamolocal"
	"github.com/ovrlrd/cloud/internal/logs"
	"github.com/ovrlrd/cloud/internal/store"
)

// stack is the whole service as `make dev` serves it: config.Load over a
// local environment, app.New, and the local gateway in front of the real
// Lambda adapters on a loopback port; its own table in DynamoDB Local, an
// in-process S3 stand-in, the Apple stand-in, and the fake CLI.
type stack struct {
	app    *app.App
	srv    *httptest.Server
	apple  *applefake.Server
	s3     *httptest.Server
	apiKey string

	// dbTransport is the service's DynamoDB connection pool: the SDK's
	// default transport, kept here so its idle connections can be closed
	// before resources are counted.
	dbTransport *http.Transport

	endpoint string
	table    string
	dynamo   *dynamolocal.Server // started here when none was given
	dirs     []string
}

func startStack(ctx context.Context, o *options, logOut io.Writer) (s *stack, err error) {
	s = &stack{endpoint: o.endpoint, table: "load-" + randomHex(6)}
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
	for _, prefix := range []string{"ovrlrd-load-work-", "ovrlrd-load-claude-"} {
		d, err := os.MkdirTemp("", prefix)
		if err != nil {
			return s, err
		}
		s.dirs = append(s.dirs, d)
	}
	s.apple = applefake.New()
	s.s3 = httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	s.apiKey = rand.Text()
	timeout := max(o.timeout, time.Second).Round(time.Second)
	env := map[string]string{
		"STAGE":              "local",
		"S3_ENDPOINT":        s.s3.URL,
		"TABLE_NAME":         s.table,
		"DYNAMODB_ENDPOINT":  s.endpoint,
		"JWT_SECRET":         "load1:" + rand.Text() + rand.Text(),
		"API_KEY":            s.apiKey,
		"APPLE_JWKS_URL":     s.apple.URL,
		"ALLOW_OPEN_SIGNUP":  "true",
		"LOG_LEVEL":          o.logLevel,
		"CLAUDE_PATH":        cli,
		"CLAUDE_WORK_ROOT":   s.dirs[0],
		"CLAUDE_CONFIG_ROOT": s.dirs[1],
		// No turn outlives the run.
		"CLAUDE_TIMEOUT":      timeout.String(),
		"CLAUDE_IDLE_TIMEOUT": min(timeout, 30*time.Second).String(),
	}
	// Every other limit keeps its default.
	if o.turnLimit != "" {
		env["RATE_LIMIT_TURN"] = o.turnLimit
	}
	cfg, err := config.Load(ctx, config.All, func(k string) string { return env[k] })
	if err != nil {
		return s, err
	}
	s.dbTransport = awshttp.NewBuildableClient().GetTransport()
	useTransport := func(o *dynamodb.Options) { o.HTTPClient = &http.Client{Transport: s.dbTransport} }
	if err := store.CreateTable(ctx, store.NewDB(localAWS(), s.endpoint, useTransport), s.table); err != nil {
		return s, fmt.Errorf("create table: %w", err)
	}
	s.app, err = app.New(ctx, cfg, logs.New(logOut, cfg.LogLevel), app.WithDynamoDB(useTransport))
	if err != nil {
		return s, err
	}
	if err := s.app.Workspace.EnsureBucket(ctx); err != nil {
		return s, fmt.Errorf("workspace bucket: %w", err)
	}
	s.srv = httptest.NewServer(s.app.Gateway())
	return s, nil
}

// closeIdle drops every idle keep-alive connection this process holds: the
// service's to DynamoDB Local (client side), and the connections to the
// gateway and the S3 stand-in (server side, which the clients' transports
// then drop too). Call it only when no request is in flight.
func (s *stack) closeIdle() {
	s.dbTransport.CloseIdleConnections()
	s.srv.CloseClientConnections()
	s.s3.CloseClientConnections()
}

// close stops everything the stack started: the HTTP server (which waits
// for the requests in flight), background turns, the stand-ins, the table,
// and DynamoDB Local if started here.
func (s *stack) close() {
	if s.srv != nil {
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
// a test, this one records the failure instead.
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
