package chatfn

import (
	"context"
	"errors"
	"time"
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
	next, chained := f.Accounts.Finisher.(lambdaFunction)
	if chained && outOfTime && ctx.Err() == nil && ev.Link < maxLinks {
		if herr := next.invoke(ctx, finishEvent{UserID: ev.UserID, Link: ev.Link + 1}); herr == nil {
			return map[string]string{"continued": "account deletion"}, nil
		}
	}
	f.Log.ErrorContext(ctx, "account deletion: finish failed", "err", err.Error())
	return nil, err
}
