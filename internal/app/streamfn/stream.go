// Package streamfn assembles the StreamFunction: turns, streamed through
// its URL or started by the chat function's event, run by the CLI runner
// with their folders kept in S3, and the push after each.
package streamfn

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdaurl"

	"github.com/ovrlrd/cloud/internal/api"
	"github.com/ovrlrd/cloud/internal/app"
	"github.com/ovrlrd/cloud/internal/claude"
	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/envelope"
	"github.com/ovrlrd/cloud/internal/imports"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/push"
	"github.com/ovrlrd/cloud/internal/turn"
	"github.com/ovrlrd/cloud/internal/watch"
)

// Function is the assembled stream function.
type Function struct {
	*app.App
	Turns   *turn.Service
	Imports *imports.Service
	deps    api.Deps
}

// Options are how the function differs from the deployed one; the zero
// value is it.
type Options struct {
	// KMS opens projects' tokens; nil is AWS KMS (make dev gives its own
	// key).
	KMS envelope.KMS
}

// New adds to a what the stream function uses. It does no network I/O.
func New(a *app.App, o Options) (*Function, error) {
	cfg := a.Config
	pushes, err := notifier(a)
	if err != nil {
		return nil, err
	}
	tc, err := turnConfig(cfg, a.AWS, a.Log)
	if err != nil {
		return nil, err
	}
	var after []turn.AfterTurn
	if pushes != nil {
		after, tc.Announce = []turn.AfterTurn{pushAnswer(pushes)}, pushes.ApprovalNeeded
	}
	files := newWorkspace(a)
	tc.Workspace, tc.WorkspaceMaxBytes = files, cfg.Claude.WorkspaceMaxBytes
	projects := newProjects(a, files, o.KMS)
	if projects != nil {
		tc.Projects = projects
	}
	f := &Function{App: a, Turns: turn.New(a.Store, tc, a.Log, after...), deps: a.Deps()}
	var lookup imports.Projects // none: this server keeps no projects
	if projects != nil {
		lookup = a.Store
	}
	f.Imports = imports.New(imports.Options{
		Store: a.Store, Files: files, Projects: lookup,
		WorkRoot: cfg.Claude.WorkRoot, MaxMessages: cfg.Claude.ImportMaxMessages, Log: a.Log,
		// The transcript is kept in the conversation's folder, with room
		// for what a first turn adds.
		MaxBytes: min(ovrlrd.MaxUploadTranscript, cfg.Claude.WorkspaceMaxBytes-min(importHeadroom, cfg.Claude.WorkspaceMaxBytes/2)),
	})
	f.deps.Imports = f.Imports
	if projects != nil {
		f.deps.Projects = projects
	}
	f.deps.Turns = f.Turns
	f.deps.Watches = watch.New(a.Store, a.Log)
	return f, nil
}

// Init is what the function's main calls.
func Init() *Function {
	a := app.Init(config.Stream)
	// Tool processes that outlive the CLI are re-parented here and reaped,
	// instead of lingering in the execution environment.
	if err := claude.BecomeSubreaper(); err != nil {
		app.Fail(a.Log, err)
	}
	f, err := New(a, Options{})
	if err != nil {
		app.Fail(a.Log, err)
	}
	return f
}

// HTTP serves the project and import routes, which the HTTP API sends
// here.
func (f *Function) HTTP() api.HTTPAPIHandler { return app.HTTP(api.NewStreamHTTP(f.deps)) }

// URL serves Function URL events, with a streamed response.
func (f *Function) URL() api.FunctionURLHandler {
	return api.CheckStream(lambdaurl.Wrap(api.NewStream(f.deps)))
}

// Lambda is the StreamFunction's Lambda handler. It serves the Function
// URL (streamed), the HTTP API's project and import routes, and the internal event by
// which the chat function starts a buffered turn (answered as JSON once the
// turn ends).
func (f *Function) Lambda() func(context.Context, json.RawMessage) (any, error) {
	url, httpAPI := f.URL(), f.HTTP()
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		var ev app.TurnEvent
		if err := json.Unmarshal(raw, &ev); err == nil && ev.Turn != nil {
			// Lambda never retries this event (EventInvokeConfig), and
			// nobody reads its answer: a claim the table kept failing
			// was retried here and told in the conversation, and its
			// error only counts in the function's Errors metric and
			// alarm.
			return nil, f.runStarted(ctx, *ev.Turn)
		}
		// Both carry payload 2.0; a Function URL's route key is always
		// $default, the HTTP API's routes here are all named.
		var route events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(raw, &route); err == nil && route.RequestContext.HTTP.Method != "" &&
			route.RouteKey != "" && route.RouteKey != "$default" {
			// The HTTP API answers 503 after 30 s; work it gave up on is
			// stopped, not left running on this function's long timeout.
			ctx, cancel := context.WithTimeout(ctx, httpAPITimeout)
			defer cancel()
			return httpAPI(ctx, route)
		}
		var req events.LambdaFunctionURLRequest
		if err := json.Unmarshal(raw, &req); err != nil || req.RequestContext.HTTP.Method == "" {
			return nil, errors.New("unrecognised event")
		}
		return url(ctx, &req)
	}
}

// importHeadroom is what an imported transcript leaves of its folder's cap.
const importHeadroom = 4 << 20

// httpAPITimeout is the chat function's timeout, for the HTTP API's routes
// served here.
const httpAPITimeout = 29 * time.Second

// pushTimeout bounds the pushes after a turn, retries included.
const pushTimeout = 15 * time.Second

// notifier sends the pushes: after a turn, and for its live approvals.
// It is nil when push is not configured.
func notifier(a *app.App) (*push.Notifier, error) {
	cfg := a.Config
	if !cfg.PushEnabled() {
		a.Log.Warn("push notifications are off: APNS_KEY_ID, APPLE_TEAM_ID and the APNs key are not all set")
		return nil, nil
	}
	return push.New(a.Store, push.Config{
		KeyPEM: []byte(cfg.APNs.Key.Reveal()), KeyID: cfg.APNs.KeyID, TeamID: cfg.APNs.TeamID,
		Topic: cfg.SignIn.BundleIDs[0], Host: cfg.APNs.Host,
	}, a.Log)
}

// pushAnswer follows a saved turn: the push of a complete answer.
func pushAnswer(n *push.Notifier) turn.AfterTurn {
	return func(ctx context.Context, f turn.Finished) {
		if f.Outcome.Kind != ovrlrd.OutcomeComplete {
			return
		}
		ctx, cancel := context.WithTimeout(ctx, pushTimeout)
		defer cancel()
		n.Notify(ctx, f.UserID, push.Message{ConversationID: f.ConversationID, Title: f.Title, Segments: f.Outcome.Segments, TurnID: f.TurnID})
	}
}
