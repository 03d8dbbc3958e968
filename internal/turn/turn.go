package turn

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ovrlrd/cloud/internal/claude"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/relay"
	"github.com/ovrlrd/cloud/internal/sandbox"
	"github.com/ovrlrd/cloud/internal/sse"
	"github.com/ovrlrd/cloud/internal/store"
	"github.com/ovrlrd/cloud/internal/workspace"
)

// Store is the state a turn reads and writes.
type Store interface {
	StartTurn(ctx context.Context, t store.TurnStart) (ovrlrd.Conversation, ovrlrd.Message, error)
	RenewRun(ctx context.Context, convID, holder string, lease time.Duration) (ovrlrd.Run, error)
	FinishTurn(ctx context.Context, f store.TurnFinish) ([]ovrlrd.Message, error)
	ReleaseRun(ctx context.Context, convID, holder string) error
	UsageToday(ctx context.Context, userID string) (ovrlrd.DailyUsage, error)
}

// Workspace keeps a conversation's folders beyond this execution
// environment (S3), so a turn elsewhere can resume it.
type Workspace interface {
	Restore(ctx context.Context, userID, convID string, f workspace.Folders) error
	Save(ctx context.Context, userID, convID string, f workspace.Folders) error
}

// Config is how turns run the CLI.
type Config struct {
	CLIPath        string
	WorkRoot       string // per-conversation working directories
	ConfigRoot     string // per-conversation CLAUDE_CONFIG_DIR
	AdditionalDirs []string
	AllowList      []string      // tools a client may approve
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
	// DailyBudgetUSD refuses new turns once a user's day has cost this
	// much; 0 means no budget.
	DailyBudgetUSD float64
	// Workspace, if set, saves and restores conversations' folders.
	Workspace Workspace
}

// Timings of a turn; variables so tests can shorten them.
var (
	// saveMargin is kept back from the invocation's deadline for the save
	// and the terminal event.
	saveMargin = 10 * time.Second
	// lease is how long a turn holds its conversation without renewing;
	// a holder that died frees it after this.
	lease = 60 * time.Second
	// checkEvery is how often a turn renews its lease, and so how soon it
	// sees a cancel or a deletion.
	checkEvery = 1500 * time.Millisecond
	// pingEvery keeps CloudFront and the client from timing out a silent
	// stream.
	pingEvery = 15 * time.Second
	// titleTimeout bounds the title run of a new conversation.
	titleTimeout = 15 * time.Second
)

// Finished is what a turn reports to what comes after it (push, the save of
// the CLI session to S3).
type Finished struct {
	UserID         string
	ConversationID string
	Outcome        relay.Outcome
	Title          string
	Segments       []string
	Saved          bool
}

// AfterTurn runs once a turn's result is saved and its terminal event sent.
type AfterTurn func(ctx context.Context, f Finished)

// Service starts and runs turns.
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

// Job is a begun turn, everything needed to run it: in this process, or in
// the stream function after the chat function began it.
type Job struct {
	UserID          string   `json:"userId"`
	ConversationID  string   `json:"conversationId"`
	Holder          string   `json:"holder"`
	Message         string   `json:"message"`
	AllowedTools    []string `json:"allowedTools,omitempty"`
	ClaudeSessionID string   `json:"claudeSessionId,omitempty"`
	Title           string   `json:"title,omitempty"`
	New             bool     `json:"new,omitempty"`
}

// Begin validates a request and writes what precedes the stream: the
// conversation if new, the opening message and the lease, in one
// transaction. Its errors are answered as JSON, before any event.
func (s *Service) Begin(ctx context.Context, req Request) (Job, error) {
	if err := req.validate(s.cfg.AllowList); err != nil {
		return Job{}, err
	}
	if err := s.checkBudget(ctx, req.UserID); err != nil {
		return Job{}, err
	}
	holder := rand.Text()
	conv, _, err := s.store.StartTurn(ctx, store.TurnStart{
		UserID: req.UserID, ConversationID: req.ConversationID,
		Message: req.opening(), Holder: holder, Lease: lease,
	})
	if err != nil {
		return Job{}, err
	}
	j := Job{
		UserID: req.UserID, ConversationID: conv.ID, Holder: holder,
		Message: req.Message, AllowedTools: req.cliTools(), New: req.ConversationID == "",
	}
	if conv.ClaudeSessionID != nil {
		j.ClaudeSessionID = *conv.ClaudeSessionID
	}
	if conv.Title != nil {
		j.Title = *conv.Title
	}
	return j, nil
}

// Sink receives a turn's events. A nil Sink runs the turn unseen (a
// buffered turn).
type Sink interface {
	Send(sse.Event) error
	Ping() error
}

// Stop reasons.
var (
	errCancelled = errors.New("cancelled")
	errDeleted   = errors.New("conversation deleted")
)

// Run runs a begun turn to its end: it always sends exactly one terminal
// event (unless the conversation was deleted, when nothing more is written
// or sent), and returns only when the CLI and everything it started are gone.
//
// Its end is ordered so that nothing a tool did can reach the save or the
// next tenant: every process of the turn is ended, then its folders are
// saved and removed from this machine, then the messages and outcome are
// saved, then the terminal event is sent, then the push.
func (s *Service) Run(ctx context.Context, j Job, sink Sink) relay.Outcome {
	// The first byte goes out at once, before anything else of the turn
	// runs and competes for the CPU; then the outbox takes over the sink.
	if sink != nil && sink.Ping() != nil {
		sink = nil // the client already left; the turn goes on
	}
	out := newOutbox(sink, s.log)
	defer out.close()

	box, err := s.cfg.Sandbox.Acquire()
	if err != nil {
		s.log.ErrorContext(ctx, "sandbox unavailable", "err", err)
		return s.finish(ctx, j, out, relay.Outcome{Kind: relay.Error, Message: "The server is busy. Please try again."}, ovrlrd.Usage{}, "")
	}
	released := false
	release := func() {
		if !released {
			released = true
			if err := box.Release(); err != nil {
				s.log.ErrorContext(ctx, "sandbox release failed", "err", err)
			}
		}
	}
	defer release()

	var title *titleRun
	if j.New {
		title = s.startTitle(ctx, box, j.Message)
		defer title.stop()
	}

	runCtx, cancel := context.WithTimeout(ctx, s.turnTimeout(ctx))
	defer cancel()
	s.restore(runCtx, j)
	outcome, usage, stopped := s.execute(runCtx, j, box, out)

	if errors.Is(stopped, errDeleted) {
		// The conversation is gone: write nothing, and the client, if
		// still there, learns why.
		out.send(sse.Event{Type: sse.Error, Message: "This conversation was deleted."})
		return outcome
	}
	name := j.Title
	if title != nil {
		if outcome.Kind == relay.Complete {
			name = title.wait()
		}
		title.stop()
		usage = addUsage(usage, title.usage)
	}
	box.Sweep()
	s.save(ctx, j)
	release()
	return s.finish(ctx, j, out, outcome, usage, name)
}

// finish saves the turn's messages and outcome (releasing the lease), then
// sends the terminal event, then runs what follows a saved turn.
func (s *Service) finish(ctx context.Context, j Job, out *outbox, outcome relay.Outcome, usage ovrlrd.Usage, title string) relay.Outcome {
	newTitle := ""
	if j.New {
		newTitle = title
	}
	_, err := s.store.FinishTurn(context.WithoutCancel(ctx), store.TurnFinish{
		UserID: j.UserID, ConversationID: j.ConversationID, Holder: j.Holder,
		Segments: outcome.Segments, SessionID: outcome.SessionID, Title: newTitle,
		Outcome: store.TurnOutcome{Kind: outcome.Kind, Text: strings.Join(outcome.Segments, "\n"), Error: outcome.Message},
		Usage:   usage,
	})
	for _, e := range outcome.Pending {
		out.send(e)
	}
	if err != nil {
		s.log.ErrorContext(ctx, "turn save failed", "err", err)
		_ = s.store.ReleaseRun(context.WithoutCancel(ctx), j.ConversationID, j.Holder)
		outcome = relay.Outcome{Kind: relay.Error, Message: "Failed to save the response. Please try again."}
		out.send(outcome.Terminal(j.ConversationID, ""))
		return outcome
	}
	out.send(outcome.Terminal(j.ConversationID, title))
	out.close()
	finished := Finished{UserID: j.UserID, ConversationID: j.ConversationID, Outcome: outcome, Title: title, Segments: outcome.Segments, Saved: true}
	for _, after := range s.after {
		after(context.WithoutCancel(ctx), finished)
	}
	return outcome
}

// turnTimeout is CLAUDE_TIMEOUT, cut so the turn ends saveMargin before the
// invocation's deadline.
func (s *Service) turnTimeout(ctx context.Context) time.Duration {
	d := s.cfg.Timeout
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl)-saveMargin)
	}
	return max(d, time.Second)
}

// errExposed stops a CLI whose memory and open files its own tools could
// reach (see sandbox.Exposed).
var errExposed = errors.New("the Claude CLI is readable by the user it runs as")

// execute runs the CLI and relays its events; it returns the outcome, what
// the model calls cost (measured by the proxy), and why the run was
// stopped early, if it was.
func (s *Service) execute(ctx context.Context, j Job, box *sandbox.Box, out *outbox) (relay.Outcome, ovrlrd.Usage, error) {
	tr := relay.New(j.ConversationID)
	f := s.folders(j.ConversationID)
	if err := box.Own(f.Work, f.Config); err != nil {
		s.log.ErrorContext(ctx, "turn folders", "err", err)
		return relay.Outcome{Kind: relay.Error, Message: "Could not prepare the conversation's folders. Please try again."}, ovrlrd.Usage{}, nil
	}
	models, err := s.cfg.Models.Open(ctx)
	if err != nil {
		s.log.ErrorContext(ctx, "model proxy", "err", err)
		return relay.Outcome{Kind: relay.Error, Message: "Could not reach Claude. Please try again."}, ovrlrd.Usage{}, nil
	}
	defer models.Close()
	run, err := claude.Start(ctx, s.options(j, box, models))
	if err != nil {
		o := tr.Finish(nil)
		o.Message = err.Error()
		return o, ovrlrd.Usage{}, nil
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
	ping := time.NewTimer(pingEvery)
	defer ping.Stop()
	// The lease is renewed on its own goroutine, so a DynamoDB round trip
	// never holds up the events; it reports why the turn must stop.
	stop := make(chan error, 1)
	watchCtx, endWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		s.watch(watchCtx, j, stop)
	}()
	defer func() { endWatch(); <-watched }()
	events := run.Events()
	for events != nil {
		select {
		case ev, ok := <-events:
			if !ok {
				events = nil
				break
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
			out.ping()
			ping.Reset(pingEvery)
		case reason := <-stop:
			if stopped == nil {
				stopped = reason
				run.Stop(reason)
			}
		}
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
	if o.Kind == relay.Error && o.Message == "" {
		o.Message = failureMessage(stopped, exit)
	} else if stopped != nil {
		// Stopped after the result line: still report why.
		o.Kind, o.Message = relay.Error, failureMessage(stopped, exit)
	}
	if exit.Stderr != "" && (exit.Code != 0 || o.Kind == relay.Error) {
		s.log.WarnContext(ctx, "claude stderr", "stderr", claude.Redact(exit.Stderr), "code", exit.Code)
	}
	if exit.BadLines > 0 || exit.HugeLines > 0 {
		s.log.WarnContext(ctx, "claude output lines skipped", "notJSON", exit.BadLines, "tooLong", exit.HugeLines)
	}
	return o, usage, stopped
}

// watch renews the lease every checkEvery until ctx ends, and sends the
// first reason to stop (a cancel, or the conversation gone) on stop.
func (s *Service) watch(ctx context.Context, j Job, stop chan<- error) {
	t := time.NewTicker(checkEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if reason := s.check(ctx, j); reason != nil {
				stop <- reason
				return
			}
		}
	}
}

// check renews the lease; it returns why the turn must stop, if it must.
func (s *Service) check(ctx context.Context, j Job) error {
	run, err := s.store.RenewRun(ctx, j.ConversationID, j.Holder, lease)
	switch {
	case ovrlrd.IsCode(err, ovrlrd.ECONFLICT):
		return errDeleted
	case err != nil:
		// The table hiccuped (or the turn is ending); the lease outlives
		// a few missed renewals.
		if ctx.Err() == nil {
			s.log.WarnContext(ctx, "lease renewal failed", "err", err)
		}
		return nil
	case run.Cancel:
		return errCancelled
	}
	return nil
}

func failureMessage(stopped error, exit claude.Exit) string {
	switch {
	case errors.Is(exit.Reason, errExposed):
		return "Claude could not be started safely on this server."
	case errors.Is(stopped, errCancelled) || errors.Is(exit.Reason, errCancelled):
		return "Cancelled"
	case errors.Is(exit.Reason, claude.ErrTimeout), errors.Is(exit.Reason, claude.ErrIdle):
		return "Request timed out"
	case exit.Code != 0:
		return fmt.Sprintf("Claude stopped unexpectedly (exit code %d).", exit.Code)
	}
	return "Claude ended without a result."
}

// options are the CLI's arguments for a turn (contract §7.1).
func (s *Service) options(j Job, box *sandbox.Box, m ovrlrd.ModelSession) claude.Options {
	f := s.folders(j.ConversationID)
	return claude.Options{
		Path:           s.cfg.CLIPath,
		Dir:            f.Work,
		ConfigDir:      f.Config,
		AdditionalDirs: s.cfg.AdditionalDirs,
		AllowedTools:   j.AllowedTools,
		Resume:         j.ClaudeSessionID,
		Prompt:         j.Message,
		Env:            s.env(f.Config, box, m),
		Credential:     box.Credential(),
		IdleTimeout:    s.cfg.IdleTimeout,
	}
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

// outbox hands events to the client from its own goroutine, so a slow or
// vanished client never stops the turn from checking its lease. Its queue is
// bounded: past it, the turn waits (and so does the CLI), which bounds
// memory. Once a write fails, the client is gone: the rest is dropped.
type outbox struct {
	sink  Sink
	log   *slog.Logger
	q     chan sse.Event
	done  chan struct{}
	once  sync.Once
	alive bool
}

// outboxSize bounds the events waiting for a slow client; past it the
// turn, and through the pipe the CLI, wait.
const outboxSize = 128

// pingEvent marks a keep-alive in the queue.
var pingEvent = sse.Event{Type: sse.Ping}

func newOutbox(sink Sink, log *slog.Logger) *outbox {
	o := &outbox{sink: sink, log: log, q: make(chan sse.Event, outboxSize), done: make(chan struct{}), alive: sink != nil}
	go o.loop()
	return o
}

func (o *outbox) loop() {
	defer close(o.done)
	for e := range o.q {
		if !o.alive {
			continue
		}
		var err error
		if e.Type == sse.Ping {
			err = o.sink.Ping()
		} else {
			err = o.sink.Send(e)
		}
		if err != nil {
			o.alive = false // the client left; the turn goes on
		}
	}
}

func (o *outbox) send(e sse.Event) { o.q <- e }
func (o *outbox) ping()            { o.q <- pingEvent }

// close flushes what is queued and waits for the writer.
func (o *outbox) close() {
	o.once.Do(func() { close(o.q) })
	<-o.done
}

// checkBudget refuses a turn once the user's day has cost the budget.
func (s *Service) checkBudget(ctx context.Context, userID string) error {
	if s.cfg.DailyBudgetUSD <= 0 {
		return nil
	}
	day, err := s.store.UsageToday(ctx, userID)
	if err != nil {
		return err
	}
	if day.CostUSD >= s.cfg.DailyBudgetUSD {
		return ovrlrd.Errorf(ovrlrd.ERATELIMIT, "Your daily budget of $%.2f is spent. It renews at midnight UTC.", s.cfg.DailyBudgetUSD)
	}
	return nil
}

// folders are a conversation's folders on this environment's disk.
func (s *Service) folders(convID string) workspace.Folders {
	return workspace.Folders{
		Config: filepath.Join(s.cfg.ConfigRoot, convID),
		Work:   filepath.Join(s.cfg.WorkRoot, convID),
	}
}

// restore brings back a resumed conversation's folders when this
// environment lacks them. A failure is logged: the CLI then reports the
// missing session as the turn's error.
func (s *Service) restore(ctx context.Context, j Job) {
	if s.cfg.Workspace == nil || j.ClaudeSessionID == "" {
		return
	}
	if err := s.cfg.Workspace.Restore(ctx, j.UserID, j.ConversationID, s.folders(j.ConversationID)); err != nil {
		s.log.ErrorContext(ctx, "workspace restore failed", "err", err)
	}
}

// save keeps the conversation's folders after every turn, before they are
// removed from this machine. A failure is logged.
func (s *Service) save(ctx context.Context, j Job) {
	if s.cfg.Workspace == nil {
		return
	}
	if err := s.cfg.Workspace.Save(context.WithoutCancel(ctx), j.UserID, j.ConversationID, s.folders(j.ConversationID)); err != nil {
		s.log.ErrorContext(ctx, "workspace save failed", "err", err)
	}
}
