package app

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"runtime"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ovrlrd/cloud/internal/claude"
	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/modelproxy"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/relay"
	"github.com/ovrlrd/cloud/internal/sandbox"
	"github.com/ovrlrd/cloud/internal/turn"
)

// turnConfig is how turns run the CLI, from the configuration. Functions
// that only begin turns (auth, and chat in AWS) get no model proxy and no
// sandbox: they never run one.
func turnConfig(cfg config.Config, awsCfg aws.Config, log *slog.Logger) (turn.Config, error) {
	tc := turn.Config{
		CLIPath:        cfg.Claude.Path,
		WorkRoot:       cfg.Claude.WorkRoot,
		ConfigRoot:     cfg.Claude.ConfigRoot,
		AdditionalDirs: cfg.Claude.AdditionalDirs,
		AllowList:      cfg.Claude.AllowedTools,
		DailyBudgetUSD: cfg.Claude.DailyBudgetUSD,
		Timeout:        cfg.Claude.Timeout,
		IdleTimeout:    cfg.Claude.IdleTimeout,
		Env: claude.Env{
			Provider:   claude.Provider(cfg.Claude.Provider),
			AWSRegion:  cfg.Region,
			MaxRetries: cfg.Claude.MaxRetries,
		},
	}
	if !cfg.Function.RunsTurns() {
		return tc, nil
	}
	proxy, err := modelproxy.New(modelproxy.Options{
		Provider:       modelproxy.Provider(cfg.Claude.Provider),
		Upstream:       cfg.Claude.BaseURL,
		Credential:     cfg.Claude.Credential.Reveal(),
		Region:         cfg.Region,
		AWSCredentials: awsCfg.Credentials,
		Log:            log,
	})
	if err != nil {
		return tc, err
	}
	tc.Models = proxy
	mode := sandbox.Detect(cfg.InLambda)
	tc.Sandbox, err = sandbox.New(sandbox.Config{
		Mode:  mode,
		UIDs:  sandbox.Range{First: cfg.Claude.SandboxUIDs[0], Last: cfg.Claude.SandboxUIDs[1]},
		Roots: []string{cfg.Claude.WorkRoot, cfg.Claude.ConfigRoot},
		Log:   log,
	})
	if err != nil {
		return tc, err
	}
	if mode == sandbox.Shared {
		how := "run as root for a user per turn"
		if runtime.GOOS != "linux" {
			how = "a user per turn needs Linux"
		}
		log.Warn("turns share this server's user: one turn's tools can reach another's folders (" + how + ")")
	}
	return tc, nil
}

// StreamLambda is the StreamFunction's Lambda handler. It serves the
// Function URL (streamed), and the internal event by which the chat
// function starts a buffered turn (answered as JSON once the turn ends).
func (a *App) StreamLambda() func(context.Context, json.RawMessage) (any, error) {
	url := a.Stream()
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		var ev turnEvent
		if err := json.Unmarshal(raw, &ev); err == nil && ev.Turn != nil {
			o, ran, err := a.runStarted(ctx, *ev.Turn)
			if err != nil || !ran {
				// A delivery that may not run returns no error, so
				// Lambda does not retry it; a claim that could not be
				// made (the table failed) is an error, and a retry
				// claims it or finds it gone.
				return nil, err
			}
			return map[string]string{"kind": o.Kind}, nil
		}
		var req events.LambdaFunctionURLRequest
		if err := json.Unmarshal(raw, &req); err != nil || req.RequestContext.HTTP.Method == "" {
			return nil, errors.New("unrecognised event")
		}
		return url(ctx, &req)
	}
}

// claimLease is how long a claimed turn holds its conversation until its
// own renewals take over: a turn's lease.
const claimLease = time.Minute

// claimTimeout bounds the claim's one DynamoDB call.
const claimTimeout = 5 * time.Second

// runStarted runs a turn the buffered route began, at most once. Its event
// may be delivered more than once (Lambda's async invokes are at least
// once, and retried), even after the lease it names expired or ended; so
// the run first claims the lease, and a delivery that cannot claim it does
// nothing. ran reports whether the turn ran; err is a claim the table
// failed to answer.
func (a *App) runStarted(ctx context.Context, j turn.Job) (o relay.Outcome, ran bool, err error) {
	claimCtx, cancel := context.WithTimeout(ctx, claimTimeout)
	err = a.Store.ClaimRun(claimCtx, j.ConversationID, j.Holder, claimLease)
	cancel()
	switch {
	case ovrlrd.IsCode(err, ovrlrd.ECONFLICT):
		a.Log.InfoContext(ctx, "turn not run: another delivery ran it, or another turn took its conversation")
		a.noteUnanswered(ctx, j)
		return relay.Outcome{}, false, nil
	case err != nil:
		a.Log.ErrorContext(ctx, "turn not run: claiming its lease failed", "err", err)
		return relay.Outcome{}, false, err
	}
	return a.Turns.Run(ctx, j, nil), true, nil
}

// msgUnanswered is what GET /chat/{id} shows of a buffered turn that never
// ran.
const msgUnanswered = "This message was not answered: another turn took the conversation first. Please send it again."

// noteUnanswered leaves msgUnanswered in the conversation when the turn
// will never run and never did; a turn another delivery runs, or ran, has
// its own outcome.
func (a *App) noteUnanswered(ctx context.Context, j turn.Job) {
	ctx, cancel := context.WithTimeout(ctx, claimTimeout)
	defer cancel()
	if run, err := a.Store.Run(ctx, j.ConversationID); err == nil && run.Holder == j.Holder {
		return
	}
	if _, err := a.Store.Outcome(ctx, j.ConversationID, j.Holder); !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
		return
	}
	if _, err := a.Store.AppendMessage(ctx, j.UserID, j.ConversationID, ovrlrd.RoleSystem, msgUnanswered); err != nil && !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
		a.Log.ErrorContext(ctx, "recording an unanswered turn", "err", err)
	}
}
