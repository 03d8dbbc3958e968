package turn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ovrlrd/cloud/internal/claude"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/sandbox"
	"github.com/ovrlrd/cloud/internal/sse"
	"github.com/ovrlrd/cloud/internal/workspace"
)

// Store is the state a turn reads and writes.
type Store interface {
	Conversation(ctx context.Context, userID, convID string) (ovrlrd.Conversation, error)
	RenewRun(ctx context.Context, convID, holder string, lease time.Duration) (ovrlrd.Run, error)
	FinishTurn(ctx context.Context, f ovrlrd.TurnFinish) error
	ReleaseRun(ctx context.Context, convID, holder string) error
	EventLog
	Approvals
	// DeleteEvents deletes a turn's log, once its conversation is gone.
	DeleteEvents(ctx context.Context, convID, turnID string) error
}

// Workspace keeps a conversation's folders beyond this execution
// environment (S3), so a turn elsewhere can resume it.
type Workspace interface {
	// Restore replaces the local folders with a saved version.
	Restore(ctx context.Context, userID, convID, version string, f workspace.Folders) error
	// Save uploads the folders as a new version, current once recorded.
	Save(ctx context.Context, userID, convID string, f workspace.Folders) (string, error)
	// Discard deletes a version no conversation names any more.
	Discard(ctx context.Context, userID, convID, version string) error
	// TouchGit renews the age of a project conversation's git directory,
	// which the bucket would otherwise expire while its files are kept.
	TouchGit(ctx context.Context, userID, convID string) error
}

// Config is how turns run the CLI.
type Config struct {
	CLIPath        string
	WorkRoot       string // per-conversation working directories
	ConfigRoot     string // per-conversation CLAUDE_CONFIG_DIR
	AdditionalDirs []string
	Timeout        time.Duration // a whole turn, capped by the invocation's deadline
	IdleTimeout    time.Duration // silence on the CLI's stdout
	// Env is the CLI's environment apart from what each run gets: its
	// folders, its TMPDIR and its model session.
	Env claude.Env
	// Models gives each CLI run its way to the model.
	Models ovrlrd.ModelGate
	// Sandbox confines each turn: the user its processes run as, its
	// folders, and the sweep after it.
	Sandbox *sandbox.Pool
	// Workspace, if set, saves and restores conversations' folders, each
	// at most WorkspaceMaxBytes.
	Workspace         Workspace
	WorkspaceMaxBytes int64
	// Projects, if set, makes the first turn of a conversation on a
	// project work in a checkout of it.
	Projects Projects
	// AllowList is CLAUDE_ALLOWED_TOOLS: the tools a user may approve, in
	// a request or live.
	AllowList []string
	// ApprovalTimeout is how long a live approval waits for its answer.
	ApprovalTimeout time.Duration
	// Announce, if set, tells the user of each live approval request.
	Announce Announce
}

// Projects prepares the folder of a project conversation's first turn.
type Projects interface {
	DefaultProject(ctx context.Context, userID string) (ovrlrd.Project, bool, error)
	// Prepare makes workDir a checkout of j's project and attaches the
	// project to j's conversation. Its domain errors are the user's to
	// read.
	Prepare(ctx context.Context, j ovrlrd.Turn, workDir string) error
}

// Timings of a turn; variables so tests can shorten them.
var (
	// saveMargin is kept back from the invocation's deadline for the end
	// of a turn: the save of its folders, then, in the last finishMargin,
	// the save of the turn and the terminal event.
	saveMargin   = 30 * time.Second
	finishMargin = 10 * time.Second
	// endTimeout bounds the end of a turn that has no deadline (make dev).
	endTimeout = 2 * time.Minute
	// lease is how long a turn holds its conversation without renewing;
	// a holder that died frees it after this.
	lease = 60 * time.Second
	// checkEvery is how often a turn renews its lease, and so how soon it
	// sees a cancel or a deletion.
	checkEvery = 1500 * time.Millisecond
	// renewTimeout bounds one renewal: a hung call must not hide that the
	// lease is running out.
	renewTimeout = 5 * time.Second
	// leaseMargin: a turn that has not renewed for lease minus this stops,
	// before another turn may take the conversation over.
	leaseMargin = 15 * time.Second
	// pingEvery keeps CloudFront and the client from timing out a silent
	// stream.
	pingEvery = 15 * time.Second
	// titleTimeout bounds the title run of a new conversation.
	titleTimeout = 15 * time.Second
	// titleGrace is how long a finished turn still waits for its title:
	// about what its own save takes, never the title's whole timeout. A
	// title that misses it is made by the next completed turn.
	titleGrace = time.Second
)

// Finished is what a turn reports to what comes after it (push, the save of
// the CLI session to S3).
type Finished struct {
	UserID         string
	ConversationID string
	Outcome        Outcome
	Title          string
	TurnID         string // the turn's holder: the same across a redelivered invocation
}

// AfterTurn runs once a turn's result is saved and its terminal event sent.
type AfterTurn func(ctx context.Context, f Finished)

// Service runs turns.
type Service struct {
	store Store
	cfg   Config
	log   *slog.Logger
	after []AfterTurn
}

// New returns a Service.
func New(st Store, cfg Config, log *slog.Logger, after ...AfterTurn) *Service {
	return &Service{store: st, cfg: cfg, log: log, after: after}
}

// Stop reasons.
var (
	errCancelled = errors.New("cancelled")
	errDeleted   = errors.New("conversation deleted")
	// errLeaseLost: another turn holds the conversation now.
	errLeaseLost = errors.New("lease lost")
	// errLeaseStale: the lease could not be renewed for so long that
	// another turn may soon take it over.
	errLeaseStale = errors.New("lease not renewed")
	// errSessionLost: the CLI found no session to resume.
	errSessionLost = errors.New("session not found")
)

// What a user is told when the turn's end could not keep everything.
const (
	msgContextLost = "The earlier context of this conversation could not be restored, so Claude could not continue it. Send your message again to start afresh from here."
	msgRestore     = "Could not restore this conversation's files. Please try again."
	msgSaveFailed  = "This turn's files could not be saved, so your next message continues from the turn before. Please try again."
	msgLeaseLost   = "This turn lost its hold on the conversation to another one and was stopped; its answer was kept, its files were not."
	msgLeaseStale  = "This turn was stopped: the database did not answer for too long."
)

// Run runs a begun turn to its end: it always sends exactly one terminal
// event (unless the conversation was deleted, when nothing more is written
// or sent), and returns only when the CLI and everything it started are gone.
//
// Its end is ordered so that nothing a tool did can reach the save or the
// next tenant, and nothing the user saw is lost: every process of the turn
// is ended, then its folders are saved as a new version and removed from
// this machine, then the messages, the outcome and that version are saved
// with the lease released in one transaction, then the terminal event is
// sent, then the push. A nil sink runs the turn unseen (a buffered turn).
func (s *Service) Run(ctx context.Context, j ovrlrd.Turn, sink sse.Sink) {
	s.run(ctx, j, sink)
}

// run is Run, with the outcome for the tests that check it.
func (s *Service) run(ctx context.Context, j ovrlrd.Turn, sink sse.Sink) Outcome {
	// The first byte goes out at once, before anything else of the turn
	// runs and competes for the CPU; then the outbox takes over the sink.
	if sink != nil && sink.Send(pingEvent) != nil {
		sink = nil // the client already left; the turn goes on
	}
	// What forwards it (Lambda's runtime client, or the local gateway)
	// gets to run before the turn's start takes the cores.
	runtime.Gosched()
	out := newOutbox(ctx, sink, s.log, sse.WriteTimeout)
	out.journal, out.turnID = newJournal(ctx, s.store, s.log, j.ConversationID, j.Holder), j.Holder
	defer out.close()
	// A new conversation's default project is read beside the sandbox's
	// making and the conversation's read, not after them.
	fallback := s.defaultProject(ctx, j)

	box, err := s.cfg.Sandbox.Acquire()
	if err != nil {
		s.log.ErrorContext(ctx, "sandbox unavailable", "err", err)
		return s.finish(ctx, j, out, ending{outcome: failed("The server is busy. Please try again.")})
	}
	// j's conversation is read beside the start's transaction, and has had
	// the first byte and the sandbox's making to answer. The lease is not
	// renewed yet, so the wait is bounded as a renewal is.
	rctx, cancel := context.WithTimeout(ctx, renewTimeout)
	j, err = j.Resolve(rctx)
	cancel()
	if err != nil {
		s.release(ctx, box)
		if ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
			s.gone(ctx, j, out) // deleted since the start: as below
			return failed(deletedEvent.Message)
		}
		if ovrlrd.IsCode(err, ovrlrd.ECONFLICT) {
			return s.finish(ctx, j, out, ending{outcome: failed(ovrlrd.ErrorMessage(err))})
		}
		s.log.ErrorContext(ctx, "reading the conversation", "err", err)
		return s.finish(ctx, j, out, ending{outcome: failed("Could not read the conversation. Please try again.")})
	}
	end, stopped := s.contain(ctx, j, box, out, fallback)
	if errors.Is(stopped, errDeleted) {
		s.gone(ctx, j, out)
		return end.outcome
	}
	return s.finish(ctx, j, out, end)
}

var deletedEvent = sse.Event{Type: sse.Error, Message: "This conversation was deleted."}

// gone ends a turn whose conversation was deleted: nothing more is written,
// what its log wrote after the conversation's sweep is deleted, and the
// client, if still there, learns why.
func (s *Service) gone(ctx context.Context, j ovrlrd.Turn, out *outbox) {
	out.seal() // the log's writer stops
	ctx, cancel := beyond(ctx, 0)
	defer cancel()
	if err := s.store.DeleteEvents(ctx, j.ConversationID, j.Holder); err != nil {
		s.log.WarnContext(ctx, "a deleted conversation's event log is left to expire", "err", err)
	}
	out.deliver(deletedEvent)
}

// contain runs the turn in its sandbox, and returns once every process of
// the turn is gone, its folders saved and the sandbox released.
func (s *Service) contain(ctx context.Context, j ovrlrd.Turn, box *sandbox.Box, out *outbox, fallback func() string) (end ending, stopped error) {
	defer s.release(ctx, box)
	// CLAUDE_TIMEOUT, cut so the turn ends saveMargin before the
	// invocation's deadline.
	timeout := s.cfg.Timeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl)-saveMargin)
	}
	runCtx, cancel := context.WithTimeout(ctx, max(timeout, time.Second))
	defer cancel()
	if end, ok := s.restore(runCtx, j); !ok {
		// Nothing ran and nothing is saved: the stored session and folders
		// stay as they were, unless they are gone for good.
		return end, nil
	}
	// The last renewal of the lease, kept across the checkout's watch and
	// the CLI's: time unrenewed in one counts in the other.
	renewed := time.Now()
	if end, stopped, ok := s.prepare(runCtx, j, out, fallback, &renewed); !ok {
		return end, stopped
	}
	var title *titleRun
	// Not at all for a run that wrote no line: it failed, and its title
	// would not be kept. Its CLI starts once the turn's CLI waits for the
	// model, or has ended (it answered without the model): before that, the
	// two would compete for the cores, and an event handed to the client is
	// not yet delivered.
	firstLine := func(asked <-chan struct{}) {
		if j.Title == "" {
			title = s.startTitle(ctx, box, j.Message, asked)
		}
	}
	end.outcome, end.usage, stopped = s.execute(runCtx, j, box, out, firstLine, &renewed)
	if title != nil {
		// Only a completed turn keeps its title: execute never reports one
		// that was stopped as complete.
		end.title = title.finish(end.outcome.Kind == ovrlrd.OutcomeComplete)
		end.usage = addUsage(end.usage, title.usage)
	}
	switch {
	case errors.Is(stopped, errDeleted):
		// Nothing of it is to be kept.
	case errors.Is(stopped, errSessionLost):
		// Its transcript is gone: the folders of this run hold nothing to
		// keep, and the next turn must not try to resume it again.
		end.outcome.Message, end.forget = msgContextLost, true
	default:
		box.Sweep()
		if !errors.Is(stopped, errLeaseLost) {
			// A turn that lost its lease could not record its folders anyway.
			s.save(ctx, j, &end)
		}
	}
	return end, stopped
}

func (s *Service) release(ctx context.Context, box *sandbox.Box) {
	if err := box.Release(); err != nil {
		s.log.ErrorContext(ctx, "sandbox release failed", "err", err)
	}
}

// beyond is a context for the end of a turn: it outlives ctx's
// cancellation (the client left), never its deadline less reserve.
func beyond(ctx context.Context, reserve time.Duration) (context.Context, context.CancelFunc) {
	c := context.WithoutCancel(ctx)
	if dl, ok := ctx.Deadline(); ok {
		return context.WithDeadline(c, dl.Add(-reserve))
	}
	return context.WithTimeout(c, endTimeout)
}

// ending is what a turn saves when it ends.
type ending struct {
	outcome   Outcome
	usage     ovrlrd.Usage
	title     string // a title made by this turn
	workspace string // the version its folders were saved as
	forget    bool   // the stored session and folders are gone for good
}

func failed(message string) Outcome {
	return Outcome{Kind: ovrlrd.OutcomeError, Message: message}
}

// finish saves the turn's messages, outcome and folders' version (releasing
// the lease), then sends the terminal event, then runs what follows a saved
// turn. A turn that lost its lease still keeps what its user saw.
func (s *Service) finish(ctx context.Context, j ovrlrd.Turn, out *outbox, end ending) Outcome {
	ctx, cancel := beyond(ctx, 0)
	defer cancel()
	outcome := end.outcome
	f := ovrlrd.TurnFinish{
		UserID: j.UserID, ConversationID: j.ConversationID, Holder: j.Holder,
		Segments: outcome.Segments, Title: end.title, Workspace: end.workspace, Forget: end.forget,
		Outcome: ovrlrd.TurnOutcome{Kind: outcome.Kind, Text: ovrlrd.JoinSegments(outcome.Segments), Error: outcome.Message},
		Usage:   end.usage,
	}
	if end.workspace != "" || s.cfg.Workspace == nil {
		// The session goes with the folders it was saved with, or not at all.
		f.SessionID = outcome.SessionID
	}
	if j.Buffered {
		f.Notice = notice(outcome)
	}
	// The terminal event is logged with the save: a client that
	// reattaches finds it once the turn is saved, never before.
	var framed []sse.Event
	f.Log, framed = out.seal(lastEvents(outcome, j.ConversationID, end.title)...)
	err := s.store.FinishTurn(ctx, f)
	if errors.Is(err, ovrlrd.ErrLeaseLost) {
		if end.workspace != "" {
			s.discard(ctx, j, end.workspace)
		}
		f.Unleased, end.workspace = true, ""
		lost := failed(msgLeaseLost)
		lost.Pending = outcome.Pending
		f.Outcome.Kind, f.Outcome.Error = lost.Kind, lost.Message
		if j.Buffered {
			f.Notice = notice(lost)
		}
		f.Log, framed = out.seal(lastEvents(lost, j.ConversationID, "")...)
		if err = s.store.FinishTurn(ctx, f); err == nil {
			outcome, end.title = lost, ""
		} else if ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
			s.gone(ctx, j, out)
			return outcome
		}
	}
	if err != nil {
		s.log.ErrorContext(ctx, "turn save failed", "err", err)
		outcome = Outcome{Kind: ovrlrd.OutcomeError, Message: "Failed to save the response. Please try again.", Pending: outcome.Pending}
		var rest ovrlrd.EventBatch
		rest, framed = out.seal(lastEvents(outcome, j.ConversationID, "")...)
		// Logged before the lease goes: a watcher that sees it gone
		// reads the log once more and finds this end.
		if err := s.store.AppendEvents(ctx, j.ConversationID, rest); err != nil {
			s.log.WarnContext(ctx, "event log append failed", "err", err)
		}
		// Whether the write landed is not known: the version it may name
		// stays, for the bucket's lifecycle to expire if nobody does.
		_ = s.store.ReleaseRun(ctx, j.ConversationID, j.Holder)
		for _, e := range framed {
			out.deliver(e)
		}
		return outcome
	}
	for _, e := range framed {
		out.deliver(e)
	}
	out.close()
	finished := Finished{UserID: j.UserID, ConversationID: j.ConversationID, TurnID: j.Holder, Outcome: outcome, Title: end.title}
	for _, after := range s.after {
		after(ctx, finished)
	}
	if s.cfg.Workspace != nil && (end.workspace != "" || end.forget) && (j.Workspace != "" || j.ClaudeSessionID != "") {
		// The version the conversation named before is nobody's now.
		s.discard(ctx, j, j.Workspace)
	}
	return outcome
}

// lastEvents is what a turn that ended with o sends last: the tool_end it
// owes, then its terminal event.
func lastEvents(o Outcome, convID, title string) []sse.Event {
	return append(slices.Clip(o.Pending), o.Terminal(convID, title))
}

// notice is what GET /chat/{id} shows of an outcome that has no message of
// its own, for a turn nobody streamed: what its terminal event would have
// said, and for a permission request, where to answer it.
func notice(o Outcome) string {
	if o.Kind == ovrlrd.OutcomePermissionRequired {
		return "Claude asked for permission to use a tool. Open the conversation in the app to approve it."
	}
	return o.Terminal("", "").Message
}

// noSession is how the CLI says that --resume found no transcript.
const noSession = "No conversation found with session ID"

// errExposed stops a CLI whose memory and open files its own tools could
// reach (see sandbox.Exposed).
var errExposed = errors.New("the Claude CLI is readable by the user it runs as")

// execute runs the CLI and relays its events; it returns the outcome, what
// the model calls cost (measured by the proxy), and why the run was
// stopped early, if it was. firstLine runs when the CLI wrote its first
// line, with what tells when the CLI first asked the model.
func (s *Service) execute(ctx context.Context, j ovrlrd.Turn, box *sandbox.Box, out *outbox, firstLine func(asked <-chan struct{}), renewed *time.Time) (Outcome, ovrlrd.Usage, error) {
	tr := &translator{conversationID: j.ConversationID}
	f := s.folders(j.ConversationID)
	if err := box.Own(f.Work, f.Config); err != nil {
		s.log.ErrorContext(ctx, "turn folders", "err", err)
		return failed("Could not prepare the conversation's folders. Please try again."), ovrlrd.Usage{}, nil
	}
	models, err := s.cfg.Models.Open(ctx)
	if err != nil {
		s.log.ErrorContext(ctx, "model proxy", "err", err)
		return failed("Could not reach Claude. Please try again."), ovrlrd.Usage{}, nil
	}
	defer models.Close()
	// The CLI's arguments for a turn (contract §7.1).
	run, err := claude.Start(ctx, claude.Options{
		Path:           s.cfg.CLIPath,
		Dir:            f.Work,
		ConfigDir:      f.Config,
		AdditionalDirs: s.cfg.AdditionalDirs,
		AllowedTools:   j.AllowedTools,
		Resume:         j.ClaudeSessionID,
		Prompt:         j.Message,
		Env:            s.env(f.Config, box, models),
		Credential:     box.Credential(),
		IdleTimeout:    s.cfg.IdleTimeout,
		Asks:           j.LiveApprovals,
	})
	if err != nil {
		// The error names the server's paths: the user is told the kind.
		s.log.ErrorContext(ctx, "claude CLI could not start", "err", err)
		msg := "Could not start Claude. Please try again."
		switch {
		case errors.Is(err, claude.ErrNotFound):
			msg = "The Claude CLI was not found on the server."
		case errors.Is(err, claude.ErrNotExecutable):
			msg = "The Claude CLI on the server is not executable."
		}
		return failed(msg), ovrlrd.Usage{}, nil
	}
	if s.cfg.Sandbox.Mode() != sandbox.Shared && sandbox.Exposed(run.Pid()) {
		s.log.ErrorContext(ctx, "refusing to run the CLI: make its binary execute-only (chmod 0711) for the user it runs as", "err", errExposed)
		run.Stop(errExposed)
	}
	var (
		result  *claude.Result
		stopped error
		buf     []sse.Event
	)
	lined := sync.OnceFunc(func() { firstLine(models.Asked()) })
	ping := time.NewTimer(pingEvery)
	defer ping.Stop()
	// The lease is renewed on its own goroutine, so a DynamoDB round trip
	// never holds up the events; it reports why the turn must stop.
	stop := make(chan error, 1)
	watchCtx, endWatch := context.WithCancel(ctx)
	var watched sync.WaitGroup
	watched.Go(func() { s.watch(watchCtx, j, stop, renewed) })
	defer func() { endWatch(); watched.Wait() }()
	var asks *asking
	if j.LiveApprovals {
		asks = s.newAsking(ctx, j, run)
		tr.answered = asks.userAnswered
	}
	events := run.Events()
	for events != nil {
		select {
		case ev, ok := <-events:
			if !ok {
				events = nil
				break
			}
			lined()
			switch {
			case asks == nil:
			case ev.Ask != nil:
				asks.ask(*ev.Ask, out)
				continue
			case ev.Withdrawn != "":
				asks.withdraw(ev.Withdrawn)
				continue
			}
			if ev.Result != nil {
				result = ev.Result
			}
			buf = tr.Feed(buf[:0], ev)
			for _, e := range buf {
				out.send(e)
			}
			if len(buf) > 0 {
				ping.Reset(pingEvery)
			}
		case <-ping.C:
			out.send(pingEvent)
			ping.Reset(pingEvery)
		case reason := <-stop:
			if stopped == nil {
				stopped = reason
				run.Stop(reason)
				if asks != nil {
					asks.stop() // no answer may reach a CLI that is stopping
				}
			}
		}
	}
	if asks != nil {
		asks.end()
	}
	exit, _ := run.Wait()
	models.Close()
	usage := models.Usage()
	if exit.Tampered > 0 {
		s.log.WarnContext(ctx, "claude output tampered with", "lines", exit.Tampered, "first", exit.TamperReason)
	}
	if claimed := reported(result); result != nil && disagree(usage, claimed) {
		s.log.WarnContext(ctx, "the CLI's reported usage disagrees with the proxy's",
			"measuredUsd", usage.CostUSD, "reportedUsd", claimed.CostUSD, "measuredOut", usage.OutputTokens, "reportedOut", claimed.OutputTokens)
	}
	o := tr.Finish(result)
	if result != nil && result.IsError && result.APIErrorStatus >= 500 {
		// The CLI's text for these names the API host it was given.
		o.Message = fmt.Sprintf("Claude's API is unavailable (HTTP %d). Please try again.", result.APIErrorStatus)
	}
	if o.Kind == ovrlrd.OutcomeError && o.Message == "" {
		o.Message = failureMessage(stopped, exit)
	} else if stopped != nil {
		// Stopped after the result line: still report why.
		o.Kind, o.Message = ovrlrd.OutcomeError, failureMessage(stopped, exit)
	}
	if j.ClaudeSessionID != "" && o.Kind == ovrlrd.OutcomeError && stopped == nil &&
		(strings.Contains(exit.Stderr, noSession) || strings.Contains(o.Message, noSession)) {
		stopped = errSessionLost
	}
	if exit.Stderr != "" && (exit.Code != 0 || o.Kind == ovrlrd.OutcomeError) {
		s.log.WarnContext(ctx, "claude stderr", "stderr", claude.Redact(exit.Stderr), "code", exit.Code)
	}
	if exit.BadLines > 0 || exit.HugeLines > 0 {
		s.log.WarnContext(ctx, "claude output lines skipped", "notJSON", exit.BadLines, "tooLong", exit.HugeLines)
	}
	return o, usage, stopped
}

// watch renews the lease every checkEvery until ctx ends, and sends the
// first reason to stop (a cancel, the conversation gone, the lease lost or
// too long unrenewed) on stop. renewed is the last renewal, which it keeps;
// only one watch of a turn runs at a time.
func (s *Service) watch(ctx context.Context, j ovrlrd.Turn, stop chan<- error, renewed *time.Time) {
	t := time.NewTicker(checkEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			ok, reason := s.check(ctx, j)
			if ok {
				*renewed = time.Now()
			} else if reason == nil && time.Since(*renewed) > lease-leaseMargin {
				reason = errLeaseStale
			}
			if reason != nil {
				stop <- reason
				return
			}
		}
	}
}

// check renews the lease: it reports whether it did, and why the turn must
// stop, if it must.
func (s *Service) check(ctx context.Context, j ovrlrd.Turn) (bool, error) {
	rctx, cancel := context.WithTimeout(ctx, renewTimeout)
	defer cancel()
	run, err := s.store.RenewRun(rctx, j.ConversationID, j.Holder, lease)
	switch {
	case ovrlrd.IsCode(err, ovrlrd.ECONFLICT):
		// Deleted, or taken over after it expired: only the first means
		// that nothing is to be written.
		if _, err := s.store.Conversation(rctx, j.UserID, j.ConversationID); ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
			return false, errDeleted
		}
		return false, errLeaseLost
	case err != nil:
		// The table hiccuped (or the turn is ending); the lease outlives
		// a few missed renewals.
		if ctx.Err() == nil {
			s.log.WarnContext(ctx, "lease renewal failed", "err", err)
		}
		return false, nil
	case run.Cancel:
		return true, errCancelled
	}
	return true, nil
}

func failureMessage(stopped error, exit claude.Exit) string {
	switch {
	case errors.Is(exit.Reason, errExposed):
		return "Claude could not be started safely on this server."
	case errors.Is(stopped, errCancelled) || errors.Is(exit.Reason, errCancelled):
		return "Cancelled"
	case errors.Is(stopped, errLeaseLost):
		return msgLeaseLost
	case errors.Is(stopped, errLeaseStale):
		return msgLeaseStale
	case errors.Is(exit.Reason, claude.ErrTimeout), errors.Is(exit.Reason, claude.ErrIdle):
		return "Request timed out"
	case exit.Code != 0:
		return fmt.Sprintf("Claude stopped unexpectedly (exit code %d).", exit.Code)
	}
	return "Claude ended without a result."
}

// env is the CLI's environment for a config directory, which is also its
// home: nothing of the server's own environment reaches it, and no
// credential either, only the model session's token.
func (s *Service) env(configDir string, box *sandbox.Box, m ovrlrd.ModelSession) []string {
	e := s.cfg.Env
	e.ConfigDir, e.Home, e.TempDir = configDir, configDir, box.TempDir()
	e.BaseURL, e.Token = m.BaseURL(), m.Token()
	return claude.Environment(e)
}

// folders are a conversation's folders on this environment's disk.
func (s *Service) folders(convID string) workspace.Folders {
	return workspace.Folders{
		Config: filepath.Join(s.cfg.ConfigRoot, convID),
		Work:   filepath.Join(s.cfg.WorkRoot, convID),
	}
}

// restore brings back the conversation's saved folders. When it cannot,
// it returns the ending of a turn that never ran: a transient failure
// keeps everything as it is, folders that are gone for good are forgotten.
func (s *Service) restore(ctx context.Context, j ovrlrd.Turn) (ending, bool) {
	if s.cfg.Workspace == nil || (j.Workspace == "" && j.ClaudeSessionID == "") {
		return ending{}, true
	}
	f := s.folders(j.ConversationID)
	err := s.cfg.Workspace.Restore(ctx, j.UserID, j.ConversationID, j.Workspace, f)
	if err == nil {
		return ending{}, true
	}
	// Half a restore (one folder of two) must not stay for the next
	// tenant; it is not the turn's yet, so its release would not see it.
	_ = os.RemoveAll(f.Config)
	_ = os.RemoveAll(f.Work)
	if errors.Is(err, workspace.ErrMissing) {
		s.log.WarnContext(ctx, "workspace missing: the conversation starts afresh", "err", err)
		return ending{outcome: failed(msgContextLost), forget: true}, false
	}
	s.log.ErrorContext(ctx, "workspace restore failed", "err", err)
	return ending{outcome: failed(msgRestore)}, false
}

// save keeps the conversation's folders as a new version, before they are
// removed from this machine. What it cannot keep becomes the turn's
// outcome, so the user knows the next turn continues from an older state.
func (s *Service) save(ctx context.Context, j ovrlrd.Turn, end *ending) {
	if s.cfg.Workspace == nil {
		return
	}
	ctx, cancel := beyond(ctx, finishMargin)
	defer cancel()
	if j.ProjectID != "" && j.Workspace != "" {
		// Beside the save, which takes longer: one request, no wait.
		var touched sync.WaitGroup
		defer touched.Wait()
		touched.Go(func() {
			if err := s.cfg.Workspace.TouchGit(ctx, j.UserID, j.ConversationID); err != nil {
				s.log.WarnContext(ctx, "git directory not renewed", "err", err)
			}
		})
	}
	version, err := s.cfg.Workspace.Save(ctx, j.UserID, j.ConversationID, s.folders(j.ConversationID))
	switch {
	case err == nil:
		end.workspace = version
		return
	case errors.Is(err, workspace.ErrTooLarge):
		end.outcome.Message = fmt.Sprintf("This conversation's files are larger than the %d MB it may keep, so this turn's were not saved; your next message continues from the turn before.", s.cfg.WorkspaceMaxBytes>>20)
	default:
		end.outcome.Message = msgSaveFailed
	}
	s.log.ErrorContext(ctx, "workspace save failed", "err", err)
	end.outcome.Kind = ovrlrd.OutcomeError
}

// discard deletes a saved version nobody names ("" is the layout before
// versions); a failure only leaves it to the bucket's lifecycle. Only a
// service with a Workspace has versions.
func (s *Service) discard(ctx context.Context, j ovrlrd.Turn, version string) {
	if err := s.cfg.Workspace.Discard(ctx, j.UserID, j.ConversationID, version); err != nil {
		s.log.WarnContext(ctx, "workspace discard failed", "err", err)
	}
}
