// Package app assembles what every function shares from the configuration:
// the AWS configuration, the table, the audit trail, the accounts and the
// API's dependencies. Each function adds what only it uses in a package of
// its own (chatfn, streamfn; the auth function needs nothing more), since Go
// links whole packages. main.go of every function, the local dev server and
// the end-to-end tests all build through these constructors, so there is
// one wiring and it cannot drift.
package app

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/ovrlrd/cloud/internal/api"
	"github.com/ovrlrd/cloud/internal/apple"
	"github.com/ovrlrd/cloud/internal/audit"
	"github.com/ovrlrd/cloud/internal/auth"
	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/logs"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/procfs"
	"github.com/ovrlrd/cloud/internal/store"
)

// App is what every function shares.
type App struct {
	Config   config.Config
	Log      *slog.Logger
	AWS      aws.Config
	Store    *store.Store
	Accounts *auth.Service
	Audit    *audit.Recorder
}

// New builds the shared dependencies named by cfg; dynamoDB adjusts the
// DynamoDB client (a test counts or fails its calls). It does no network
// I/O, so a cold start pays only for what the first request uses.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, dynamoDB ...func(*dynamodb.Options)) (*App, error) {
	awsOpts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(cfg.Region)}
	if cfg.Stage == config.Local {
		// Local stand-ins: never look for real credentials.
		key := cmp.Or(cfg.LocalAWSKey.Reveal(), "local")
		awsOpts = append(awsOpts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(key, key, "")))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsOpts...)
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	st := store.New(store.NewDB(awsCfg, cfg.DynamoDBEndpoint, dynamoDB...),
		store.Options{Table: cfg.TableName, CursorKey: derivedKey(cfg.JWTKeys, "cursor"), EventTTL: cfg.EventLogTTL})
	rec := audit.New(st, cfg.Sessions.AuditRetention, derivedKey(cfg.JWTKeys, "audit address"), log)

	// The verifier's background key refresh lives as long as the process.
	verifier, err := apple.NewVerifier(context.WithoutCancel(ctx), apple.Options{
		JWKSURL: cfg.SignIn.JWKSURL, Audiences: cfg.SignIn.BundleIDs, ServicesIDs: cfg.SignIn.ServicesIDs,
	})
	if err != nil {
		return nil, err
	}
	policy := auth.Policy{Emails: cfg.SignIn.ApprovedEmails, AppleIDs: cfg.SignIn.ApprovedAppleIDs, OpenSignup: cfg.SignIn.AllowOpenSignup}
	if !policy.Listed() {
		log.Info("sign-up policy: no allow-list", "openSignup", cfg.SignIn.AllowOpenSignup)
	}
	if cfg.OriginSecretVersion != "" {
		// Which CloudFront secret this environment expects, while one rolls.
		log.Info("origin secret", "version", cfg.OriginSecretVersion, "accepted", len(cfg.OriginSecrets))
	}
	// Without Cleaners (the chat function adds them), a deletion that a
	// sign-in finishes leaves its S3 objects to the bucket's expiry rule.
	svc := auth.New(auth.Options{
		Store: st, Apple: verifier, Tokens: auth.NewIssuer(cfg.JWTKeys), Policy: policy,
		Audit: rec, Log: log, TTL: cfg.Sessions.TTL, RefreshGrace: cfg.Sessions.RefreshGrace,
		CheckInterval: cfg.Sessions.CheckInterval, DeviceEnv: ovrlrd.Environment(cfg.APNs.Environment),
	})
	return &App{Config: cfg, Log: log, AWS: awsCfg, Store: st, Accounts: svc, Audit: rec}, nil
}

// Init loads the configuration for fn and builds the App, or ends the
// process with one message naming every problem. It is what main calls.
func Init(fn config.Function) *App {
	ctx := context.Background()
	cfg, err := config.Load(ctx, fn, os.Getenv)
	if err != nil {
		Fail(logs.New(os.Stderr, slog.LevelInfo), err)
	}
	log := logs.New(os.Stdout, cfg.LogLevel)
	// The function's credentials are in this process's environment (and,
	// in the stream function, a turn's tools run beside it): no other
	// process may read it.
	if err := procfs.HideSelf(); err != nil {
		Fail(log, err)
	}
	a, err := New(ctx, cfg, log)
	if err != nil {
		Fail(log, err)
	}
	return a
}

// Fail ends a function's process whose initialisation failed.
func Fail(log *slog.Logger, err error) {
	log.Error("init failed", "err", err.Error())
	os.Exit(1)
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

// Deps are the API's dependencies every function shares; each adds its own.
func (a *App) Deps() api.Deps {
	secrets := make([]string, len(a.Config.OriginSecrets))
	for i, s := range a.Config.OriginSecrets {
		secrets[i] = s.Reveal()
	}
	return api.Deps{
		Log: a.Log, APIKey: a.Config.APIKey.Reveal(), Store: a.Store,
		Auth: a.Accounts, Limiter: a.Store, Limits: a.Config.Limits,
		Conversations: a.Store, Devices: a.Store, ProjectLookup: a.Store,
		OriginSecrets: secrets,
		TurnRules:     api.TurnRules{AllowList: a.Config.Claude.AllowedTools, DailyBudgetUSD: a.Config.Claude.DailyBudgetUSD},
	}
}

// HTTP is the Lambda handler of an HTTP API function serving h.
func HTTP(h http.Handler) api.HTTPAPIHandler {
	return api.CheckHTTP(httpadapter.NewV2(h).ProxyWithContext)
}

// Auth is the AuthFunction's Lambda handler: the shared parts are all it
// uses.
func (a *App) Auth() api.HTTPAPIHandler { return HTTP(api.NewAuth(a.Deps())) }

// TurnEvent is the internal event the chat function sends the stream
// function to run a buffered turn. Only IAM principals allowed to invoke the
// function can send it; a Function URL request never has this shape.
type TurnEvent struct {
	Turn *ovrlrd.Turn `json:"ovrlrdTurn"`
}
