package gateway

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/ovrlrd/cloud/internal/app"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// What the deployed functions hand to Lambda's asynchronous invokes, a Stack
// runs on goroutines it owns and waits for in Close: the buffered turns the
// chat function starts in the stream function, and the account deletions
// the chat function finishes in its own invocations.

// localStarter runs buffered turns through the stream function's own Lambda
// handler, with the event the chat function would invoke it with.
type localStarter struct {
	stream  func(context.Context, json.RawMessage) (any, error)
	timeout time.Duration
	wg      *sync.WaitGroup
}

func (s localStarter) Start(ctx context.Context, j ovrlrd.Turn) error {
	event, err := json.Marshal(app.TurnEvent{Turn: &j})
	if err != nil {
		return err
	}
	s.wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
		defer cancel()
		// The handler logs a failed claim; nobody here could retry it.
		_, _ = s.stream(ctx, event)
	})
	return nil
}

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

// localFinisher finishes account deletions with the FinishDeletion the chat
// function's event runs, retried with a growing pause.
type localFinisher struct {
	finish  func(ctx context.Context, userID string) error
	wg      *sync.WaitGroup
	log     *slog.Logger
	backoff time.Duration
}

func (f localFinisher) Finish(ctx context.Context, userID string) error {
	f.wg.Go(func() {
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
	})
	return nil
}
