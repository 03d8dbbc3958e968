// Package chatfn assembles the ChatFunction: conversations, devices,
// health, account deletion and buffered turns, which it starts elsewhere
// (the stream function; in make dev and the tests, the stream function's
// handler in this process). It links S3 and the Lambda client, never the
// CLI runner.
package chatfn

import (
	"context"
	"encoding/json"
	"errors"
	"os"
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
	// once the response is sent. Empty leaves them to the App's accounts:
	// with no Finisher they finish in the request; make dev and the tests
	// give them one that runs them in this process.
	SelfInvoke string
	// BufferedWait is how long a buffered turn is waited for.
	BufferedWait time.Duration
}

// Function is the assembled chat function.
type Function struct {
	*app.App
	Workspace *workspace.Store
	deps      api.Deps
}

// New adds to a what the chat function uses. It does no network I/O.
func New(a *app.App, o Options) *Function {
	cfg := a.Config
	f := &Function{App: a, Workspace: workspace.New(a.AWS, workspace.Options{
		Bucket: cfg.SessionsBucket, Endpoint: cfg.S3Endpoint, MaxBytes: cfg.Claude.WorkspaceMaxBytes,
	}, a.Log)}
	client := lambda.NewFromConfig(a.AWS)
	if o.Starter == nil {
		o.Starter = lambdaFunction{client: client, name: cfg.StreamFunction}
	}
	a.Accounts.Cleaners = []auth.AccountCleaner{f.Workspace.DeleteUser}
	if o.SelfInvoke != "" {
		a.Accounts.Finisher = lambdaFunction{client: client, name: o.SelfInvoke}
	}
	f.deps = a.Deps()
	f.deps.Starter, f.deps.BufferedWait = o.Starter, o.BufferedWait
	f.deps.Cleaners = []api.ConversationCleaner{f.Workspace.DeleteConversation}
	return f
}

// Init is what the function's main calls: the configuration, then New with
// the deployed options. Only Lambda (and its emulators) name the function.
func Init() *Function {
	return New(app.Init(config.Chat), Options{SelfInvoke: os.Getenv("AWS_LAMBDA_FUNCTION_NAME")})
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
