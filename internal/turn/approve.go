package turn

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ovrlrd/cloud/internal/claude"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/sse"
)

// A turn whose client asked for live approvals runs the CLI asking (see
// claude.Ask): each tool call outside the turn's allowed tools becomes an
// Approval in the table and a permission_request event, and the turn waits
// for the answer, which any device of the user records through the API,
// usually in another environment. The table is where the two meet: the
// turn reads the request until it is answered, or closes it once it
// expired or the turn ends, after which no answer is taken.

// Approvals are the store's requests for a live approval.
type Approvals interface {
	CreateApproval(ctx context.Context, a ovrlrd.Approval) error
	Approval(ctx context.Context, convID, id string) (ovrlrd.Approval, error)
	CloseApproval(ctx context.Context, convID, id string) (ovrlrd.Approval, error)
}

// ApprovalPoll is how often a waiting turn reads its request: an answer
// reaches the CLI within about this (the p99: 500 ms). The bench
// names it in its notes.
const ApprovalPoll = 200 * time.Millisecond

// Announce tells a user that a turn waits for their answer (a push).
type Announce func(ctx context.Context, a ovrlrd.Approval)

// Timings of a live approval; variables so tests can shorten them.
var (
	approvalPoll = ApprovalPoll
	// approvalReserve is kept back from the turn's deadline when a
	// request expires, for the model to go on without the tool and the
	// turn to end well.
	approvalReserve = 30 * time.Second
	// approvalMinWait: a request that would have less than this to be
	// answered is denied at once.
	approvalMinWait = 5 * time.Second
	// announceTimeout bounds the push of a request.
	announceTimeout = 10 * time.Second
)

// What the model is told of a tool it was not given, and why.
const (
	msgNotAllowed   = "This server does not allow the %s tool, so the user cannot approve it."
	msgNoTime       = "There was not enough time left in this turn to ask the user, so the tool was not run."
	msgNotAsked     = "The user could not be asked for approval, so the tool was not run."
	msgExpired      = "The user did not answer in time, so the tool was not run."
	msgUserDenied   = "The user denied this tool."
	msgTooLarge     = "This tool's input is too large to show the user for approval, so it was not run."
	maxShownInput   = 32 << 10        // the largest input a request shows: all of it, or it is not asked
	closeAfterTurns = 5 * time.Second // bounds the close of a request the turn stopped waiting on
)

// asking follows a live turn's requests; its waiters end with the turn.
// Its methods but stop and end are called from the turn's goroutine.
type asking struct {
	s        *Service
	j        ovrlrd.Turn
	run      *claude.Run
	deadline time.Time // the CLI's; zero: none
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	// waits ends the wait of each open request, by the CLI's id for it.
	waits map[string]context.CancelFunc
	// answered are the tool calls the user answered, by tool use id (the
	// waiters write it): a denial of theirs is their answer, not a
	// permission_required.
	mu       sync.Mutex
	answered map[string]bool
}

func (s *Service) newAsking(ctx context.Context, j ovrlrd.Turn, run *claude.Run) *asking {
	a := &asking{s: s, j: j, run: run, waits: map[string]context.CancelFunc{}, answered: map[string]bool{}}
	a.deadline, _ = ctx.Deadline()
	a.ctx, a.cancel = context.WithCancel(ctx)
	return a
}

// stop ends every wait: the turn is stopping, and nothing more may reach
// its CLI.
func (a *asking) stop() { a.cancel() }

// end stops every wait and returns once the waiters are gone, their
// requests closed.
func (a *asking) end() {
	a.cancel()
	a.wg.Wait()
}

// userAnswered reports whether the user answered the tool call toolUseID.
func (a *asking) userAnswered(toolUseID string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.answered[toolUseID]
}

// withdraw ends the wait for a request the CLI no longer asks.
func (a *asking) withdraw(cliID string) {
	if stop, ok := a.waits[cliID]; ok {
		stop()
		delete(a.waits, cliID)
	}
}

// ask handles one of the CLI's requests, on the turn's goroutine: a tool
// the server allows is recorded and announced, and waited for on a
// goroutine of its own; any other is denied at once.
func (a *asking) ask(k claude.Ask, out *outbox) {
	if a.ctx.Err() != nil {
		return // the turn is stopping: its CLI takes no more answers
	}
	if !ovrlrd.ToolAllowed(k.ToolName, a.s.cfg.AllowList) {
		a.answer(k.RequestID, false, fmt.Sprintf(msgNotAllowed, k.ToolName))
		return
	}
	now := time.Now()
	expires := now.Add(a.s.cfg.ApprovalTimeout)
	if !a.deadline.IsZero() {
		expires = minTime(expires, a.deadline.Add(-approvalReserve))
	}
	if expires.Sub(now) < approvalMinWait {
		a.answer(k.RequestID, false, msgNoTime)
		return
	}
	// The user sees the whole input or is not asked: an allow runs the
	// input the CLI asked about, so a part left unseen would run unseen.
	input := sse.NormalizeToolInput(k.Input)
	if len(input) > maxShownInput {
		a.answer(k.RequestID, false, msgTooLarge)
		return
	}
	req := ovrlrd.Approval{
		ID: uuid.NewString(), ConversationID: a.j.ConversationID, UserID: a.j.UserID, TurnID: a.j.Holder,
		ToolName: k.ToolName, ToolInput: input, ExpiresAt: ovrlrd.Timestamp(expires.UTC().Truncate(time.Millisecond)),
	}
	if err := a.create(req); err != nil {
		a.s.log.ErrorContext(a.ctx, "recording an approval request", "err", err)
		a.answer(k.RequestID, false, msgNotAsked)
		return
	}
	out.send(sse.Event{Type: sse.PermissionRequest, Approval: &req})
	// The push ends with the wait: one for a request already answered,
	// withdrawn or ended asks nothing.
	ctx, cancel := context.WithCancel(a.ctx)
	a.waits[k.RequestID] = cancel
	if a.s.cfg.Announce != nil {
		a.wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, announceTimeout)
			defer cancel()
			a.s.cfg.Announce(ctx, req)
		})
	}
	a.wg.Go(func() {
		defer cancel()
		a.wait(ctx, k, req)
	})
}

// create records req, bounded as a lease renewal is.
func (a *asking) create(req ovrlrd.Approval) error {
	ctx, cancel := context.WithTimeout(a.ctx, renewTimeout)
	defer cancel()
	return a.s.store.CreateApproval(ctx, req)
}

// wait reads req until it is answered or expires, and answers the CLI; a
// turn that ends first, or a CLI that withdraws the request (ctx ends),
// closes it.
func (a *asking) wait(ctx context.Context, k claude.Ask, req ovrlrd.Approval) {
	cliID := k.RequestID
	t := time.NewTicker(approvalPoll)
	defer t.Stop()
	expiry := time.NewTimer(time.Until(time.Time(req.ExpiresAt)))
	defer expiry.Stop()
	for {
		select {
		case <-ctx.Done():
			a.close(req)
			return
		case <-expiry.C:
			got := a.close(req)
			if got.Decision != "" {
				a.decided(k, got)
				return
			}
			a.s.log.InfoContext(a.ctx, "approval request expired", "tool", req.ToolName)
			a.answer(cliID, false, msgExpired)
			return
		case <-t.C:
			rctx, cancel := context.WithTimeout(ctx, renewTimeout)
			got, err := a.s.store.Approval(rctx, req.ConversationID, req.ID)
			cancel()
			if err == nil && got.Decision != "" {
				a.decided(k, got)
				return
			}
			if err != nil && ctx.Err() == nil {
				a.s.log.WarnContext(a.ctx, "reading an approval request", "err", err)
			}
		}
	}
}

// close ends the wait for req's answer in the table, and returns it as it
// stands: with the answer that came first, if one did.
func (a *asking) close(req ovrlrd.Approval) ovrlrd.Approval {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(a.ctx), closeAfterTurns)
	defer cancel()
	got, err := a.s.store.CloseApproval(ctx, req.ConversationID, req.ID)
	if err != nil {
		a.s.log.WarnContext(ctx, "closing an approval request", "err", err)
	}
	return got
}

func (a *asking) decided(k claude.Ask, got ovrlrd.Approval) {
	a.mu.Lock()
	a.answered[k.ToolUseID] = true
	a.mu.Unlock()
	cliID := k.RequestID
	if got.Decision == ovrlrd.DecisionAllow {
		a.answer(cliID, true, "")
		return
	}
	msg := msgUserDenied
	if got.Message != "" {
		msg += " Their message: " + got.Message
	}
	a.answer(cliID, false, msg)
}

func (a *asking) answer(cliID string, allow bool, message string) {
	if err := a.run.Answer(cliID, allow, message); err != nil && a.ctx.Err() == nil {
		a.s.log.WarnContext(a.ctx, "answering the CLI", "err", err)
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
