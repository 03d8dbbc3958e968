package app

import (
	"context"
	"encoding/json"
	"errors"
	"os"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ovrlrd/cloud/internal/claude"
	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/turn"
)

// turnConfig is how turns run the CLI, from the configuration.
func turnConfig(cfg config.Config) turn.Config {
	return turn.Config{
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
			Credential: cfg.Claude.Credential.Reveal(),
			BaseURL:    cfg.Claude.BaseURL,
			MaxRetries: cfg.Claude.MaxRetries,
			// Bedrock signs with the function's role; Lambda hands its
			// credentials to the process environment.
			AWSRegion:          cfg.Region,
			AWSAccessKeyID:     bedrockOnly(cfg, "AWS_ACCESS_KEY_ID"),
			AWSSecretAccessKey: bedrockOnly(cfg, "AWS_SECRET_ACCESS_KEY"),
			AWSSessionToken:    bedrockOnly(cfg, "AWS_SESSION_TOKEN"),
		},
	}
}

func bedrockOnly(cfg config.Config, name string) string {
	if cfg.Claude.Provider != config.Bedrock {
		return ""
	}
	return os.Getenv(name)
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
