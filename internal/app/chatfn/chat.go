// Package chatfn assembles the ChatFunction: conversations, devices,
// health, account deletion and buffered turns, which it starts elsewhere
// (the stream function; in make dev and the tests, the stream function's
// assembly in this process). It links S3 and the Lambda client, never the
// CLI runner.
package chatfn

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/ovrlrd/cloud/internal/api"
	"github.com/ovrlrd/cloud/internal/app"
	"github.com/ovrlrd/cloud/internal/auth"
	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/workspace"
)

// Options choose how the function hands work on; the zero value is the
// deployed function's, apart from SelfInvoke, which Init sets in Lambda.
type Options struct {
	// Starter runs buffered turns; nil starts them in the stream function
	// the configuration names, with an asynchronous invoke.
	Starter api.TurnStarter
	// SelfInvoke, the name of this function, hands account deletions to
	// its own asynchronous invocations: in Lambda, the environment freezes
	// once the response is sent. Empty finishes them in this process.
	SelfInvoke string
	// FinishBackoff is the pause before a local finish's first retry.
	FinishBackoff time.Duration
	// BufferedWait is how long a buffered turn is waited for.
	BufferedWait time.Duration
}

// Function is the assembled chat function.
type Function struct {
	*app.App
	Workspace *workspace.Store
	deps      api.Deps
	// background holds the account deletions this process finishes (local
	// only); Close waits for them.
	background sync.WaitGroup
}

// New adds to a what the chat function uses. It does no network I/O.
func New(a *app.App, o Options) *Function {
	cfg := a.Config
	f := &Function{App: a, Workspace: workspace.New(a.AWS, workspace.Options{
		Bucket: cfg.SessionsBucket, Endpoint: cfg.S3Endpoint, MaxBytes: cfg.Claude.WorkspaceMaxBytes,
	}, a.Log)}
	client := lambda.NewFromConfig(a.AWS)
	if o.Starter == nil {
		o.Starter = lambdaStarter{client: client, function: cfg.StreamFunction}
	}
	a.Accounts.Cleaners = []auth.AccountCleaner{f.Workspace.DeleteUser}
	a.Accounts.Finisher = localFinisher{finish: a.Accounts.FinishDeletion, wg: &f.background, log: a.Log,
		backoff: cmp.Or(o.FinishBackoff, finishBackoff)}
	if o.SelfInvoke != "" {
		a.Accounts.Finisher = lambdaFinisher{client: client, function: o.SelfInvoke}
	}
	f.deps = a.Deps()
	f.deps.Starter, f.deps.BufferedWait = o.Starter, o.BufferedWait
	f.deps.Cleaners = []api.ConversationCleaner{f.Workspace.DeleteConversation}
	return f
}

// Init is what the function's main calls: the configuration, then New with
// the deployed options.
func Init() *Function {
	a := app.Init(config.Chat)
	var o Options
	if a.Config.InLambda {
		o.SelfInvoke = os.Getenv("AWS_LAMBDA_FUNCTION_NAME")
	}
	return New(a, o)
}

// HTTP serves HTTP API events.
func (f *Function) HTTP() api.HTTPAPIHandler { return app.HTTP(api.NewChat(f.deps)) }

// Lambda is the ChatFunction's Lambda handler. It serves the HTTP API, and
// the internal event by which the function finishes an account's
// deletion; that one's error fails the invocation, so Lambda retries it.
func (f *Function) Lambda() func(context.Context, json.RawMessage) (any, error) {
	httpAPI := f.HTTP()
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		var req events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(raw, &req); err == nil && req.RequestContext.HTTP.Method != "" {
			// A request is served as one, whatever else its event holds.
			return httpAPI(ctx, req)
		}
		var ev finishEvent
		if err := json.Unmarshal(raw, &ev); err != nil || ev.UserID == "" {
			return nil, errors.New("unrecognised event")
		}
		return f.finish(ctx, ev)
	}
}

// Close waits for the account deletions this process finishes.
func (f *Function) Close() { f.background.Wait() }
