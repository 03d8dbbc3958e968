package gateway

import (
	"cmp"
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/ovrlrd/cloud/internal/app"
	"github.com/ovrlrd/cloud/internal/app/chatfn"
	"github.com/ovrlrd/cloud/internal/app/streamfn"
	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/devkit/dynamolocal"
	"github.com/ovrlrd/cloud/internal/logs"
)

// Stack is every function of one configuration in this process, each built
// by the constructor its main.go calls: what make dev and the tests serve.
type Stack struct {
	*app.App
	Chat   *chatfn.Function
	Stream *streamfn.Function
	// web serves the web client's files (Options.Web).
	web http.Handler
	// background holds the turns and deletions run here for Lambda's
	// asynchronous invokes (local.go).
	background sync.WaitGroup
}

// Options adjust a Stack for a test.
type Options struct {
	DynamoDB []func(*dynamodb.Options) // e.g. to count or fail its calls
	// Chat's Starter, unless set, runs buffered turns in the stream
	// function's assembly here, or, when the configuration names a stream
	// function, invokes it as the deployed chat function does.
	Chat chatfn.Options
	// Stream's KMS, unless set, is AWS KMS; make dev gives its own key.
	Stream streamfn.Options
	// FinishBackoff is the pause before a local finish's first retry.
	FinishBackoff time.Duration
	// Web, if set, serves the web client's paths (WebPaths) as Targets.Web.
	Web http.Handler
}

// NewStack builds the three functions on one shared App.
func NewStack(ctx context.Context, cfg config.Config, log *slog.Logger, o Options) (*Stack, error) {
	a, err := app.New(ctx, cfg, log, o.DynamoDB...)
	if err != nil {
		return nil, err
	}
	stream, err := streamfn.New(a, o.Stream)
	if err != nil {
		return nil, err
	}
	s := &Stack{App: a, Stream: stream, web: o.Web}
	if o.Chat.Starter == nil && cfg.StreamFunction == "" {
		o.Chat.Starter = localStarter{stream: stream.Lambda(), timeout: cfg.Claude.Timeout + time.Minute, wg: &s.background}
	}
	// The chat function replaces it when it invokes itself (SelfInvoke).
	a.Accounts.Finisher = localFinisher{finish: a.Accounts.FinishDeletion, wg: &s.background, log: log,
		backoff: cmp.Or(o.FinishBackoff, finishBackoff)}
	s.Chat = chatfn.New(a, o.Chat)
	return s, nil
}

// NewLocal is the Stack make dev and make invoke run: fn's settings from
// getenv, logs to out, and the table and bucket made where they are missing
// (the stand-ins start empty).
func NewLocal(ctx context.Context, fn config.Function, getenv func(string) string, out io.Writer, o Options) (*Stack, error) {
	cfg, err := config.Load(ctx, fn, getenv)
	if err != nil {
		return nil, err
	}
	s, err := NewStack(ctx, cfg, logs.New(out, cfg.LogLevel), o)
	if err != nil {
		return nil, err
	}
	if err = dynamolocal.EnsureAppTable(ctx, cfg); err == nil {
		err = s.Chat.Workspace.EnsureBucket(ctx)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Handler serves every function behind one address, routed as in AWS.
func (s *Stack) Handler() http.Handler {
	return New(Targets{Auth: s.Auth(), Chat: s.Chat.HTTP(), Stream: s.Stream.URL(), StreamHTTP: s.Stream.HTTP(), Web: s.web, Log: s.Log})
}

// Close waits for what the functions run in the background.
func (s *Stack) Close() { s.background.Wait() }
