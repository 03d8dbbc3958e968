package chatfn

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// finishAttempts is how often an account deletion's finish is tried: once,
// and retried twice, as Lambda retries the chat function's asynchronous
// invocations (its EventInvokeConfig in template.yaml).
const finishAttempts = 3

// Local finishes: how long one attempt may take, and the pause before the
// first retry, which doubles for the next.
const (
	finishTimeout = 2 * time.Minute
	finishBackoff = 2 * time.Second
)

// finishEvent is the internal event by which the chat function hands an
// account's deletion to itself. Only IAM principals allowed to invoke the
// function can send it; an HTTP API request never has this shape.
type finishEvent struct {
	UserID string `json:"ovrlrdFinishAccountDeletion"`
	// Link counts the invocations that ran out of time on this deletion:
	// each hands the rest to the next (see finish).
	Link int `json:"link,omitempty"`
}

// maxLinks bounds how many invocations, of the chat function's short
// timeout each, one account's deletion may take: well past the largest
// account, never for ever.
const maxLinks = 30

// handOverMargin is kept back from the invocation's deadline to hand a
// deletion that is not done to the next invocation.
const handOverMargin = 2 * time.Second

// lambdaFinisher sends the finish to the chat function as an asynchronous
// invoke; Lambda runs it after this response, and retries it if it fails.
type lambdaFinisher struct {
	client   *lambda.Client
	function string
}

func (f lambdaFinisher) Finish(ctx context.Context, userID string) error {
	return invokeAsync(ctx, f.client, f.function, finishEvent{UserID: userID})
}

// localFinisher finishes deletions in this process (make dev, tests): the
// same FinishDeletion the function's event runs, on a goroutine the
// Function owns and waits for at shutdown, retried with a growing pause.
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

// finish runs an account deletion's finish event.
func (f *Function) finish(ctx context.Context, ev finishEvent) (any, error) {
	work, cancel := context.WithCancel(ctx)
	if dl, ok := ctx.Deadline(); ok {
		work, cancel = context.WithDeadline(ctx, dl.Add(-handOverMargin))
	}
	err := f.Accounts.FinishDeletion(work, ev.UserID)
	outOfTime := errors.Is(work.Err(), context.DeadlineExceeded)
	cancel()
	if err == nil {
		return map[string]string{"finished": "account deletion"}, nil
	}
	// Out of time part way (each step keeps what it did): the next
	// invocation goes on from there, with a full timeout of its own.
	next, chained := f.Accounts.Finisher.(lambdaFinisher)
	if chained && outOfTime && ctx.Err() == nil && ev.Link < maxLinks {
		if herr := invokeAsync(ctx, next.client, next.function, finishEvent{UserID: ev.UserID, Link: ev.Link + 1}); herr == nil {
			return map[string]string{"continued": "account deletion"}, nil
		}
	}
	f.Log.ErrorContext(ctx, "account deletion: finish failed", "err", err.Error())
	return nil, err
}
