package streamfn

import (
	"context"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ovrlrd/cloud/internal/claude"
	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/modelproxy"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/sandbox"
	"github.com/ovrlrd/cloud/internal/turn"
)

// turnConfig is how turns run the CLI, from the configuration.
func turnConfig(cfg config.Config, awsCfg aws.Config, log *slog.Logger) (turn.Config, error) {
	tc := turn.Config{
		CLIPath:         cfg.Claude.Path,
		WorkRoot:        cfg.Claude.WorkRoot,
		ConfigRoot:      cfg.Claude.ConfigRoot,
		AdditionalDirs:  cfg.Claude.AdditionalDirs,
		Timeout:         cfg.Claude.Timeout,
		IdleTimeout:     cfg.Claude.IdleTimeout,
		AllowList:       cfg.Claude.AllowedTools,
		ApprovalTimeout: cfg.Claude.ApprovalTimeout,
		Env: claude.Env{
			Provider:   cfg.Claude.Provider,
			AWSRegion:  cfg.Region,
			MaxRetries: cfg.Claude.MaxRetries,
			Model:      cfg.Claude.Model,
		},
	}
	proxy, err := modelproxy.New(modelproxy.Options{
		Provider:       cfg.Claude.Provider,
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
		_ = proxy.Close() // nothing else owns it yet
		return tc, err
	}
	if mode == sandbox.Shared {
		log.Warn("turns share this server's user: one turn's tools can reach another's folders (a user per turn needs root, on Linux)")
	}
	return tc, nil
}

// claimTimeout bounds each of the claim's DynamoDB calls, claimAttempts how
// many are made before the turn is given up: Lambda does not retry the event.
const (
	claimTimeout  = 5 * time.Second
	claimAttempts = 3
)

// runStarted runs a turn the buffered route began, at most once. Its event
// may be delivered more than once (Lambda's async invokes are at least
// once, and retried), even after the lease it names expired or ended; so
// the run first claims the lease, and a delivery that cannot claim it does
// nothing. The error is a claim the table failed to answer.
func (f *Function) runStarted(ctx context.Context, j ovrlrd.Turn) error {
	err := f.claim(ctx, j)
	switch {
	case ovrlrd.IsCode(err, ovrlrd.ECONFLICT):
		f.Log.InfoContext(ctx, "turn not run: another delivery ran it, or another turn took its conversation")
		f.noteUnanswered(ctx, j)
		return nil
	case err != nil:
		f.Log.ErrorContext(ctx, "turn not run: claiming its lease failed", "err", err)
		f.note(ctx, j, msgNotStarted)
		return err
	}
	f.Turns.Run(ctx, j, nil)
	return nil
}

// claim claims j's lease, trying again while the table fails; a conflict
// is an answer, not a failure.
func (f *Function) claim(ctx context.Context, j ovrlrd.Turn) error {
	for attempt := 1; ; attempt++ {
		claimCtx, cancel := context.WithTimeout(ctx, claimTimeout)
		err := f.Store.ClaimRun(claimCtx, j.ConversationID, j.Holder, ovrlrd.StartLease)
		cancel()
		if err == nil || ovrlrd.IsCode(err, ovrlrd.ECONFLICT) || attempt == claimAttempts {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * 250 * time.Millisecond):
		}
	}
}

// What GET /chat/{id} shows of a buffered turn that never ran: another
// turn took the conversation, or the turn could not be started.
const (
	msgUnanswered = "This message was not answered: another turn took the conversation first. Please send it again."
	msgNotStarted = "This message was not answered: the service could not start it. Please send it again."
)

// noteUnanswered leaves msgUnanswered in the conversation when the turn
// will never run and never did; a turn another delivery runs, or ran, has
// its own outcome.
func (f *Function) noteUnanswered(ctx context.Context, j ovrlrd.Turn) {
	ctx, cancel := context.WithTimeout(ctx, claimTimeout)
	defer cancel()
	if run, err := f.Store.Run(ctx, j.ConversationID); err == nil && run.Holder == j.Holder {
		return
	}
	if _, err := f.Store.Outcome(ctx, j.ConversationID, j.Holder); ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
		f.note(ctx, j, msgUnanswered)
	}
}

// note leaves a system message in j's conversation, if it still exists.
func (f *Function) note(ctx context.Context, j ovrlrd.Turn, msg string) {
	ctx, cancel := context.WithTimeout(ctx, claimTimeout)
	defer cancel()
	if _, err := f.Store.AppendMessage(ctx, j.UserID, j.ConversationID, ovrlrd.RoleSystem, msg); err != nil && !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
		f.Log.ErrorContext(ctx, "recording an unanswered turn", "err", err)
	}
}
