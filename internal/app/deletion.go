package app

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/ovrlrd/cloud/internal/auth"
)

// finishAttempts is how often an account deletion's finish is tried: once,
// and retried twice, as Lambda retries the auth function's asynchronous
// invocations (its EventInvokeConfig in template.yaml).
const finishAttempts = 3

// Local finishes: how long one attempt may take, and the pause before the
// first retry, which doubles for the next.
const (
	finishTimeout = 2 * time.Minute
	finishBackoff = 2 * time.Second
)

// finishEvent is the internal event by which the auth function hands an
// account's deletion to itself. Only IAM principals allowed to invoke the
// function can send it; an HTTP API request never has this shape.
type finishEvent struct {
	UserID string `json:"ovrlrdFinishAccountDeletion"`
	// Link counts the invocations that ran out of time on this deletion:
	// each hands the rest to the next (see AuthLambda).
	Link int `json:"link,omitempty"`
}

// maxLinks bounds how many invocations, of the auth function's short
// timeout each, one account's deletion may take: well past the largest
// account, never for ever.
const maxLinks = 30

// handOverMargin is kept back from the invocation's deadline to hand a
// deletion that is not done to the next invocation.
const handOverMargin = 2 * time.Second

// WithSelfInvoke hands account deletions to function, the auth function
// itself, with an asynchronous invoke, instead of finishing them in this
// process: in Lambda, the environment freezes once the response is sent.
func WithSelfInvoke(function string) Option {
	return func(o *options) { o.selfFunction = function }
}

// WithFinishBackoff shortens the pause before a local retry of an account
// deletion's finish.
func WithFinishBackoff(d time.Duration) Option {
	return func(o *options) { o.finishBackoff = d }
}

// finisher is how this process finishes the account deletions it begins.
func (a *App) finisher(awsCfg aws.Config, o options) auth.Finisher {
	if o.selfFunction != "" {
		return lambdaFinisher{client: lambda.NewFromConfig(awsCfg), function: o.selfFunction}
	}
	backoff := finishBackoff
	if o.finishBackoff > 0 {
		backoff = o.finishBackoff
	}
	return localFinisher{finish: a.Accounts.FinishDeletion, wg: a.background, log: a.Log, backoff: backoff}
}

// lambdaFinisher sends the finish to the auth function as an asynchronous
// invoke; Lambda runs it after this response, and retries it if it fails.
type lambdaFinisher struct {
	client   *lambda.Client
	function string
}

func (f lambdaFinisher) Finish(ctx context.Context, userID string) error {
	return f.send(ctx, finishEvent{UserID: userID})
}

func (f lambdaFinisher) send(ctx context.Context, ev finishEvent) error {
	return invokeAsync(ctx, f.client, f.function, ev)
}

// localFinisher finishes deletions in this process (make dev, tests): the
// same FinishDeletion the auth function's event runs, on a goroutine the
// App owns and waits for at shutdown, retried with a growing pause.
type localFinisher struct {
	finish  func(ctx context.Context, userID string) error
	wg      *sync.WaitGroup
	log     *slog.Logger
	backoff time.Duration
}

func (f localFinisher) Finish(ctx context.Context, userID string) error {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		// The request ends with its response; the finish must not.
		ctx := context.WithoutCancel(ctx)
		pause := f.backoff
		for attempt := 1; ; attempt++ {
			actx, cancel := context.WithTimeout(ctx, finishTimeout)
			err := f.finish(actx, userID)
			cancel()
			if err == nil {
				return
			}
			if attempt == finishAttempts {
				f.log.ErrorContext(ctx, "account deletion: giving up; the next sign-in finishes it", "attempts", attempt, "err", err.Error())
				return
			}
			f.log.WarnContext(ctx, "account deletion: retrying", "attempt", attempt, "err", err.Error())
			t := time.NewTimer(pause)
			<-t.C
			pause *= 2
		}
	}()
	return nil
}

// AuthLambda is the AuthFunction's Lambda handler. It serves the HTTP API,
// and the internal event by which the function finishes an account's
// deletion; that one's error fails the invocation, so Lambda retries it.
func (a *App) AuthLambda() func(context.Context, json.RawMessage) (any, error) {
	httpAPI := a.Auth()
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
		work, cancel := context.WithCancel(ctx)
		if dl, ok := ctx.Deadline(); ok {
			work, cancel = context.WithDeadline(ctx, dl.Add(-handOverMargin))
		}
		err := a.Accounts.FinishDeletion(work, ev.UserID)
		outOfTime := errors.Is(work.Err(), context.DeadlineExceeded)
		cancel()
		if err == nil {
			return map[string]string{"finished": "account deletion"}, nil
		}
		// Out of time part way (each step keeps what it did): the next
		// invocation goes on from there, with a full timeout of its own.
		next, chained := a.Accounts.Finisher.(lambdaFinisher)
		if chained && outOfTime && ctx.Err() == nil && ev.Link < maxLinks {
			if herr := next.send(ctx, finishEvent{UserID: ev.UserID, Link: ev.Link + 1}); herr == nil {
				return map[string]string{"continued": "account deletion"}, nil
			}
		}
		a.Log.ErrorContext(ctx, "account deletion: finish failed", "err", err.Error())
		return nil, err
	}
}
