// Package app assembles the service from its configuration. main.go of every
// function, the local dev server and the end-to-end tests all build through
// New, so there is one wiring and it cannot drift.
package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdaurl"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/ovrlrd/cloud/internal/api"
	"github.com/ovrlrd/cloud/internal/apple"
	"github.com/ovrlrd/cloud/internal/audit"
	"github.com/ovrlrd/cloud/internal/auth"
	"github.com/ovrlrd/cloud/internal/claude"
	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/logs"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/push"
	"github.com/ovrlrd/cloud/internal/sandbox"
	"github.com/ovrlrd/cloud/internal/store"
	"github.com/ovrlrd/cloud/internal/token"
	"github.com/ovrlrd/cloud/internal/turn"
	"github.com/ovrlrd/cloud/internal/workspace"
)

// App is the assembled service.
type App struct {
	Config    config.Config
	Log       *slog.Logger
	Store     *store.Store
	Accounts  *auth.Service
	Audit     *audit.Recorder
	Turns     *turn.Service
	Workspace *workspace.Store
	starter   api.TurnStarter
	// background holds the turns this process runs for buffered requests
	// and the account deletions it finishes (local only); Close waits for
	// them.
	background   *sync.WaitGroup
	bufferedWait time.Duration
}

// Option adjusts New for tests.
type Option func(*options)

type options struct {
	dynamoDB      []func(*dynamodb.Options)
	bufferedWait  time.Duration
	selfFunction  string
	finishBackoff time.Duration
}

// WithBufferedWait shortens how long a buffered turn is waited for.
func WithBufferedWait(d time.Duration) Option {
	return func(o *options) { o.bufferedWait = d }
}

// WithDynamoDB adjusts the DynamoDB client, e.g. to count its calls.
func WithDynamoDB(fns ...func(*dynamodb.Options)) Option {
	return func(o *options) { o.dynamoDB = append(o.dynamoDB, fns...) }
}

// New builds every dependency named by cfg. It does no network I/O, so a
// cold start pays only for what the first request uses.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...Option) (*App, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	awsCfg, err := awsConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	db := store.NewDB(awsCfg, cfg.DynamoDBEndpoint, o.dynamoDB...)
	st := store.New(db, store.Options{Table: cfg.TableName, CursorKey: derivedKey(cfg.JWTKeys, "cursor")})
	rec := audit.New(st, cfg.Sessions.AuditRetention, derivedKey(cfg.JWTKeys, "audit address"), log)

	// The verifier's background key refresh lives as long as the process.
	verifier, err := apple.NewVerifier(context.WithoutCancel(ctx), apple.Options{
		JWKSURL: cfg.SignIn.JWKSURL, Audiences: cfg.SignIn.BundleIDs,
	})
	if err != nil {
		return nil, err
	}
	policy := auth.NewPolicy(cfg.SignIn.ApprovedEmails, cfg.SignIn.ApprovedAppleIDs, cfg.SignIn.AllowOpenSignup)
	if !policy.Listed() {
		log.Info("sign-up policy: no allow-list", "openSignup", cfg.SignIn.AllowOpenSignup)
	}
	if cfg.OriginSecretVersion != "" {
		// Which CloudFront secret this environment expects, while one rolls.
		log.Info("origin secret", "version", cfg.OriginSecretVersion, "accepted", len(cfg.OriginSecrets))
	}
	ws := workspace.New(awsCfg, workspace.Options{
		Bucket: cfg.SessionsBucket, Endpoint: cfg.S3Endpoint, MaxBytes: cfg.Claude.WorkspaceMaxBytes,
	}, log)
	svc := auth.New(auth.Options{
		Store: st, Apple: verifier, Tokens: token.NewIssuer(cfg.JWTKeys), Policy: policy,
		Audit: rec, Log: log, TTL: cfg.Sessions.TTL, RefreshGrace: cfg.Sessions.RefreshGrace,
		CheckInterval: cfg.Sessions.CheckInterval, DeviceEnv: ovrlrd.Environment(cfg.APNs.Environment),
		Cleaners: []auth.AccountCleaner{ws.DeleteUser},
	})
	a := &App{Config: cfg, Log: log, Store: st, Accounts: svc, Audit: rec, Workspace: ws,
		background: &sync.WaitGroup{}, bufferedWait: o.bufferedWait}
	svc.Finisher = a.finisher(awsCfg, o)
	after, err := a.afterTurn()
	if err != nil {
		return nil, err
	}
	tc, err := turnConfig(cfg, awsCfg, log)
	if err != nil {
		return nil, err
	}
	tc.Workspace, tc.WorkspaceMaxBytes = ws, cfg.Claude.WorkspaceMaxBytes
	a.Turns = turn.New(st, tc, log, after...)
	a.starter = localStarter{run: a.runStarted, timeout: cfg.Claude.Timeout + time.Minute, wg: a.background}
	if cfg.StreamFunction != "" {
		a.starter = lambdaStarter{client: lambda.NewFromConfig(awsCfg), function: cfg.StreamFunction}
	}
	return a, nil
}

// pushTimeout bounds the pushes after a turn, retries included.
const pushTimeout = 15 * time.Second

// afterTurn is what follows a saved turn: the push, when configured.
func (a *App) afterTurn() ([]turn.AfterTurn, error) {
	cfg := a.Config
	if !cfg.Function.RunsTurns() {
		return nil, nil
	}
	if !cfg.PushEnabled() {
		a.Log.Warn("push notifications are off: APNS_KEY_ID, APPLE_TEAM_ID and the APNs key are not all set")
		return nil, nil
	}
	n, err := push.New(a.Store, push.Config{
		KeyPEM: []byte(cfg.APNs.Key.Reveal()), KeyID: cfg.APNs.KeyID, TeamID: cfg.APNs.TeamID,
		Topic: cfg.SignIn.BundleIDs[0], Host: cfg.APNs.Host,
	}, a.Log)
	if err != nil {
		return nil, err
	}
	return []turn.AfterTurn{func(ctx context.Context, f turn.Finished) {
		if f.Outcome.Kind != ovrlrd.OutcomeComplete || !f.Saved {
			return
		}
		ctx, cancel := context.WithTimeout(ctx, pushTimeout)
		defer cancel()
		n.Notify(ctx, f.UserID, push.Message{ConversationID: f.ConversationID, Title: f.Title, Segments: f.Segments, TurnID: f.TurnID})
	}}, nil
}

// Close waits for the turns and account deletions this process runs in the
// background.
func (a *App) Close() { a.background.Wait() }

// Init loads the configuration for fn and builds the App, or ends the
// process with one message naming every problem. It is what main calls.
func Init(fn config.Function) *App {
	ctx := context.Background()
	cfg, err := config.Load(ctx, fn, os.Getenv)
	if err != nil {
		fail(logs.New(os.Stderr, slog.LevelInfo), err)
	}
	log := logs.New(os.Stdout, cfg.LogLevel)
	// The function's credentials are in this process's environment: no
	// other process of its user may read it.
	if err := sandbox.HideSelf(); err != nil {
		fail(log, err)
	}
	if fn == config.Stream {
		// Tool processes that outlive the CLI are re-parented here and
		// reaped, instead of lingering in the execution environment.
		if err := claude.BecomeSubreaper(); err != nil {
			fail(log, err)
		}
	}
	var opts []Option
	if fn == config.Auth && cfg.InLambda {
		opts = append(opts, WithSelfInvoke(os.Getenv("AWS_LAMBDA_FUNCTION_NAME")))
	}
	a, err := New(ctx, cfg, log, opts...)
	if err != nil {
		fail(log, err)
	}
	return a
}

func fail(log *slog.Logger, err error) {
	log.Error("init failed", "err", err.Error())
	os.Exit(1)
}

func awsConfig(ctx context.Context, cfg config.Config) (aws.Config, error) {
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(cfg.Region)}
	if cfg.Stage == config.Local {
		// Local stand-ins: never look for real credentials.
		key := "local"
		if !cfg.LocalAWSKey.IsZero() {
			key = cfg.LocalAWSKey.Reveal()
		}
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(key, key, "")))
	}
	c, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("aws config: %w", err)
	}
	return c, nil
}

// derivedKey derives a purpose-bound key (list cursors, the address hash of
// the audit trail) from the signing JWT key, so there is no extra secret to
// provision. Rolling the key ring changes them: outstanding cursors cost a
// client one reload of page 1, and the trail's address hashes start anew.
func derivedKey(ring config.KeyRing, purpose string) []byte {
	m := hmac.New(sha256.New, []byte(ring.Signing().Secret.Reveal()))
	m.Write([]byte("ovrlrd " + purpose + " v1"))
	return m.Sum(nil)
}

func (a *App) deps() api.Deps {
	return api.Deps{
		Log: a.Log, APIKey: a.Config.APIKey.Reveal(), Store: a.Store,
		Auth: a.Accounts, Limiter: a.Store, Limits: a.Config.Limits, Audit: a.Audit,
		Conversations: a.Store, Devices: a.Store, DeviceEnv: ovrlrd.Environment(a.Config.APNs.Environment),
		Turns: a.Turns, Starter: a.starter, Runs: a.Store, OriginSecrets: revealAll(a.Config.OriginSecrets),
		Cleaners:     []api.ConversationCleaner{a.Workspace.DeleteConversation},
		BufferedWait: a.bufferedWait,
	}
}

// HTTPHandler serves HTTP API events; StreamHandler serves Function URL
// events with a streamed response. Aliases, so that whatever runs them (the
// Lambda runtime, the local gateway) takes them as they are.
type (
	HTTPHandler   = func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)
	StreamHandler = func(context.Context, *events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error)
)

// Auth is the AuthFunction's Lambda handler (HTTP API events).
func (a *App) Auth() HTTPHandler {
	return api.CheckHTTP(httpadapter.NewV2(api.NewAuth(a.deps())).ProxyWithContext)
}

// Chat is the ChatFunction's Lambda handler (HTTP API events).
func (a *App) Chat() HTTPHandler {
	return api.CheckHTTP(httpadapter.NewV2(api.NewChat(a.deps())).ProxyWithContext)
}

// Stream is the StreamFunction's Lambda handler (Function URL, streamed).
func (a *App) Stream() StreamHandler {
	return api.CheckStream(lambdaurl.Wrap(api.NewStream(a.deps())))
}

// revealAll is the values of secrets, for the one component that compares
// them.
func revealAll(secrets []config.Secret) []string {
	out := make([]string, len(secrets))
	for i, s := range secrets {
		out[i] = s.Reveal()
	}
	return out
}
