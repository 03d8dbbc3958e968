package api

import (
	"context"
	"crypto/subtle"
	"net/http"
	"time"

	"github.com/ovrlrd/cloud/internal/auth"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/sse"
)

// Turns begins and runs turns.
type Turns interface {
	Begin(ctx context.Context, req ovrlrd.TurnRequest) (ovrlrd.Turn, error)
	Run(ctx context.Context, j ovrlrd.Turn, sink sse.Sink)
}

// TurnStarter runs a begun turn elsewhere: in the stream function, or in
// this process when everything runs in one (make dev).
type TurnStarter interface {
	Start(ctx context.Context, j ovrlrd.Turn) error
}

// Runs is the turn state the buffered and cancel routes read.
type Runs interface {
	CancelRun(ctx context.Context, convID string) error
	Outcome(ctx context.Context, convID, holder string) (ovrlrd.TurnOutcome, error)
	UndoStartTurn(ctx context.Context, t ovrlrd.Turn) error
}

// OriginHeader carries CloudFront's secret to the stream function's URL.
const OriginHeader = "X-Origin-Secret"

func (s *server) streamRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /chat/stream", s.authed(classTurn, s.stream))
	mux.HandleFunc("POST /chat/{id}/stream", s.authed(classTurn, s.stream))
}

func (s *server) bufferedRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /chat", s.authed(classTurn, s.buffered))
	mux.HandleFunc("POST /chat/{id}", s.authed(classTurn, s.buffered))
	mux.HandleFunc("POST /chat/{id}/cancel", s.authed(classWrite, s.cancel))
}

// fromOrigin reports whether a request came through CloudFront, which adds
// the secret header; without a configured secret every request passes.
// Every secret is compared, so the time taken says nothing of which one
// matched.
func (s *server) fromOrigin(r *http.Request) bool {
	if len(s.originSecrets) == 0 {
		return true
	}
	got := []byte(r.Header.Get(OriginHeader))
	match := 0
	for _, secret := range s.originSecrets {
		match |= subtle.ConstantTimeCompare(got, []byte(secret))
	}
	return match == 1
}

type streamBody struct {
	Message      *string  `json:"message"`
	AllowedTools []string `json:"allowedTools"`
}

// Validate checks the shape; the turn checks the limits and the tools.
func (b *streamBody) Validate() error {
	if b.Message == nil {
		return ovrlrd.Errorf(ovrlrd.EINVALID, `Field "message" is required.`)
	}
	return nil
}

func (s *server) begin(w http.ResponseWriter, r *http.Request, p auth.Principal, allowTools bool) (ovrlrd.Turn, bool) {
	var body streamBody
	if err := Decode(r, &body); err != nil {
		writeError(w, r, s.log, err)
		return ovrlrd.Turn{}, false
	}
	if !allowTools && body.AllowedTools != nil {
		writeError(w, r, s.log, ovrlrd.Errorf(ovrlrd.EINVALID, `Unknown field "allowedTools".`))
		return ovrlrd.Turn{}, false
	}
	j, err := s.turns.Begin(r.Context(), ovrlrd.TurnRequest{
		UserID: p.UserID, ConversationID: r.PathValue("id"), Message: *body.Message, AllowedTools: body.AllowedTools,
	})
	if err != nil {
		writeError(w, r, s.log, err)
		return ovrlrd.Turn{}, false
	}
	return j, true
}

// stream is POST /chat/stream and /chat/{id}/stream: the turn as
// Server-Sent Events. Errors before the stream are JSON with their status.
func (s *server) stream(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	j, ok := s.begin(w, r, p, true)
	if !ok {
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s.turns.Run(r.Context(), j, sse.NewWriter(w))
}

// BufferedWait is how long POST /chat waits for the turn by default, inside
// the HTTP API's 30 s limit.
const BufferedWait = 27 * time.Second

// answerMargin is kept back from the function's deadline for the answer: a
// wait that ran into it would surface as a 5xx for a turn that is running.
const answerMargin = 2 * time.Second

// undoTimeout bounds undoing a turn whose start failed; the request's own
// context may be what ended.
const undoTimeout = 5 * time.Second

type bufferedResponse struct {
	ConversationID string  `json:"conversationId"`
	Message        *string `json:"message,omitempty"`
}

// buffered is POST /chat and /chat/{id}: the same turn, answered as one
// JSON body when it ends in time, else 202 while it finishes, is saved and
// is pushed in the background.
func (s *server) buffered(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	j, ok := s.begin(w, r, p, false)
	if !ok {
		return
	}
	j.Buffered = true
	if err := s.starter.Start(r.Context(), j); err != nil && !s.undoStart(r, j) {
		writeError(w, r, s.log, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.waitFor(r.Context()))
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		o, err := s.runs.Outcome(ctx, j.ConversationID, j.Holder)
		switch {
		case err == nil && o.Kind == ovrlrd.OutcomeError:
			writeError(w, r, s.log, ovrlrd.Errorf(ovrlrd.EUNAVAILABLE, "%s", o.Error))
			return
		case err == nil:
			writeJSON(w, http.StatusOK, bufferedResponse{ConversationID: j.ConversationID, Message: &o.Text})
			return
		case !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) && ctx.Err() == nil:
			s.log.WarnContext(ctx, "waiting on a turn", "err", err)
		}
		select {
		case <-ctx.Done():
			writeJSON(w, http.StatusAccepted, bufferedResponse{ConversationID: j.ConversationID})
			return
		case <-tick.C:
		}
	}
}

// waitFor is how long the buffered route may wait for its turn: the
// configured wait, cut to end answerMargin before the function's deadline.
func (s *server) waitFor(ctx context.Context) time.Duration {
	d := s.bufferedWait
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl)-answerMargin)
	}
	return max(d, 0)
}

// undoStart removes what begin wrote for a turn that could not be started,
// so the conversation takes the next turn at once and shows no unanswered
// question. It reports whether the turn started after all (its run claimed
// it, e.g. an invoke that failed late after queueing the event): then the
// caller waits for it like any other.
func (s *server) undoStart(r *http.Request, j ovrlrd.Turn) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), undoTimeout)
	defer cancel()
	err := s.runs.UndoStartTurn(ctx, j)
	switch {
	case ovrlrd.IsCode(err, ovrlrd.ECONFLICT):
		s.log.WarnContext(ctx, "a turn reported as not started is running")
		return true
	case err != nil:
		s.log.ErrorContext(ctx, "undoing a turn that did not start", "err", err)
	}
	return false
}

// cancel is POST /chat/{id}/cancel: the running turn sees the flag at its
// next lease renewal and stops, saving what it produced.
func (s *server) cancel(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	conv, err := s.convs.Conversation(r.Context(), p.UserID, r.PathValue("id"))
	if err == nil {
		err = s.runs.CancelRun(r.Context(), conv.ID)
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, successResponse{Success: true})
}
