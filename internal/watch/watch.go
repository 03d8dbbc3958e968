// Package watch reattaches clients to a turn's stream: it replays the
// turn's logged events after the last one a client received, then follows
// the log until the terminal event. Any number of watchers, on any
// instance, follow a turn at once: the log in the table is all they share
// with the instance running it.
package watch

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/sse"
)

// Store is what a watcher reads.
type Store interface {
	Conversation(ctx context.Context, userID, convID string) (ovrlrd.Conversation, error)
	Events(ctx context.Context, convID, turnID string, after int) ([]ovrlrd.LoggedEvent, error)
	LastEvent(ctx context.Context, convID, turnID string) (int, error)
	// Run is the conversation's live lease, ENOTFOUND when none.
	Run(ctx context.Context, convID string) (ovrlrd.Run, error)
}

// Stream is where a watcher sends events (an sse.Writer).
type Stream interface {
	Send(e sse.Event) error
}

// Timings of a watch; variables so tests can change them.
var (
	// pollEvery is how often a watcher reads the log while events come;
	// after a second without any (a tool runs), every quietPollEvery, so
	// an idle watcher costs a read a second.
	pollEvery      = 200 * time.Millisecond
	quietPollEvery = time.Second
	// checkEvery is how often a watcher with nothing new asks whether the
	// turn still runs.
	checkEvery = 2 * time.Second
	// pingEvery keeps CloudFront and the client from timing out a stream
	// while a tool runs.
	pingEvery = 15 * time.Second
	// endMargin is kept back from the invocation's deadline: the watch ends
	// cleanly before it, and the client reconnects with its last id.
	endMargin = 5 * time.Second
	// readTimeout bounds one read of the table.
	readTimeout = 5 * time.Second
)

// Service serves watchers.
type Service struct {
	store Store
	log   *slog.Logger
}

// New returns a Service.
func New(st Store, log *slog.Logger) *Service { return &Service{store: st, log: log} }

// Follow streams to open()'s Stream the events of convID's turn after
// lastEventID ("" replays the latest turn from its start), until the
// terminal event, the client's departure or the invocation's deadline. An
// error comes before open is called: the conversation is missing or not
// userID's (ENOTFOUND), the id is malformed or of another conversation's
// turn (EINVALID), or there is nothing to follow (ErrNothingToFollow).
func (s *Service) Follow(ctx context.Context, userID, convID, lastEventID string, open func() *sse.Writer) error {
	w, err := s.start(ctx, userID, convID, lastEventID)
	if err != nil {
		return err
	}
	w.follow(ctx, open())
	return nil
}

// watch is one watcher's place in a turn's log.
type watch struct {
	s       *Service
	convID  string
	turnID  string
	after   int                  // the last event sent
	first   []ovrlrd.LoggedEvent // read before the stream began
	running bool                 // the turn ran when the watch began
}

// start checks the request and reads what the client is owed so far.
func (s *Service) start(ctx context.Context, userID, convID, lastEventID string) (*watch, error) {
	rctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	c, err := s.store.Conversation(rctx, userID, convID)
	if err != nil {
		return nil, err
	}
	w := &watch{s: s, convID: convID, turnID: c.LastTurn}
	if lastEventID != "" {
		var ok bool
		if w.turnID, w.after, ok = ovrlrd.ParseEventID(lastEventID); !ok {
			return nil, ovrlrd.Errorf(ovrlrd.EINVALID, "The last event id is not one this service sent.")
		}
	}
	if w.turnID == "" {
		return nil, ovrlrd.ErrNothingToFollow
	}
	// The lease before the log: a turn that ends in between has its last
	// events logged by then, so the read has them all.
	if w.running, err = w.runs(rctx); err != nil {
		return nil, err
	}
	if w.first, err = s.store.Events(rctx, convID, w.turnID, w.after); err != nil {
		return nil, err
	}
	if len(w.first) > 0 || w.running {
		return w, nil
	}
	// Nothing more of the turn will come: it is this conversation's and
	// over, or not this conversation's.
	if lastEventID != "" && w.turnID != c.LastTurn {
		if last, err := s.store.LastEvent(rctx, convID, w.turnID); err != nil {
			return nil, err
		} else if last == 0 {
			return nil, ovrlrd.ErrOtherTurn
		}
	}
	return nil, ovrlrd.ErrNothingToFollow
}

// runs reports whether the watched turn still holds its conversation.
func (w *watch) runs(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	run, err := w.s.store.Run(ctx, w.convID)
	if ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
		return false, nil
	}
	return err == nil && run.Holder == w.turnID, err
}

// follow sends what start read, then what the log gets, until the
// terminal event; it ends without one before the deadline, or once the
// turn is over and its log has no more (a log whose end was never
// written), or when the client leaves.
func (w *watch) follow(ctx context.Context, st Stream) {
	if len(w.first) == 0 && st.Send(sse.Event{Type: sse.Ping}) != nil {
		return // the first byte, so the client sees the stream open at once
	}
	if w.send(ctx, st, w.first) || !w.running {
		return
	}
	if dl, ok := ctx.Deadline(); ok {
		// Every read ends by then too.
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-endMargin))
		defer cancel()
	}
	poll := time.NewTimer(pollEvery)
	defer poll.Stop()
	ping := time.NewTimer(pingEvery)
	defer ping.Stop()
	checked, seen := time.Now(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ping.C:
			if st.Send(sse.Event{Type: sse.Ping}) != nil {
				return
			}
			ping.Reset(pingEvery)
			continue
		case <-poll.C:
		}
		if time.Since(seen) < time.Second {
			poll.Reset(pollEvery)
		} else {
			poll.Reset(max(quietPollEvery, pollEvery))
		}
		over := false
		if time.Since(checked) >= checkEvery {
			// Asked before the read: the turn's save writes its last
			// events with the release of its lease, so a read after a
			// release sees them.
			running, err := w.runs(ctx)
			checked, over = time.Now(), err == nil && !running
		}
		events, err := w.read(ctx)
		if err != nil {
			if ctx.Err() == nil {
				w.s.log.WarnContext(ctx, "reading a turn's log", "err", err)
			}
			continue
		}
		if len(events) > 0 {
			ping.Reset(pingEvery)
			checked, seen = time.Now(), time.Now()
			poll.Reset(pollEvery)
		}
		if w.send(ctx, st, events) || over {
			return
		}
	}
}

func (w *watch) read(ctx context.Context) ([]ovrlrd.LoggedEvent, error) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	return w.s.store.Events(ctx, w.convID, w.turnID, w.after)
}

// send sends events in order and reports whether the watch is over: the
// terminal event went out, or the client left.
func (w *watch) send(ctx context.Context, st Stream, events []ovrlrd.LoggedEvent) bool {
	for _, logged := range events {
		e := sse.Logged(ovrlrd.EventID(w.turnID, logged.Seq), logged.Data)
		if err := st.Send(e); err != nil {
			if !errors.Is(err, sse.ErrAfterTerminal) {
				w.s.log.InfoContext(ctx, "a watcher left", "err", err)
			}
			return true
		}
		w.after = logged.Seq
		if e.Terminal() {
			return true
		}
	}
	return false
}
