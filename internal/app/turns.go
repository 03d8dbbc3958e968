package app

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ovrlrd/cloud/internal/claude"
	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/modelproxy"
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
		log.Warn("turns share this server's user: one turn's tools can reach another's folders (run as root for a user per turn)")
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
			o := a.Turns.Run(ctx, *ev.Turn, nil)
			return map[string]string{"kind": o.Kind}, nil
		}
		var req events.LambdaFunctionURLRequest
		if err := json.Unmarshal(raw, &req); err != nil || req.RequestContext.HTTP.Method == "" {
			return nil, errors.New("unrecognised event")
		}
		return url(ctx, &req)
	}
}
