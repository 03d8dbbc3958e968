package api

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/ovrlrd/cloud/internal/auth"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/sse"
)

// Turns runs begun turns.
type Turns interface {
	Run(ctx context.Context, j ovrlrd.Turn, sink sse.Sink)
}

// TurnStarter runs a begun turn elsewhere: in the stream function, or in
// this process when everything runs in one (make dev).
type TurnStarter interface {
	Start(ctx context.Context, j ovrlrd.Turn) error
}

// fromOrigin reports whether a request came through CloudFront, which adds
// the secret header X-Origin-Secret; without a configured secret every request passes.
// Every secret is compared, so the time taken says nothing of which one
// matched.
func (s *server) fromOrigin(r *http.Request) bool {
	if len(s.OriginSecrets) == 0 {
		return true
	}
	got := []byte(r.Header.Get("X-Origin-Secret"))
	match := 0
	for _, secret := range s.OriginSecrets {
		match |= subtle.ConstantTimeCompare(got, []byte(secret))
	}
	return match == 1
}

type streamBody struct {
	Message      string   `json:"message"`
	AllowedTools []string `json:"allowedTools"`
	// The project to work on, by id or (the directory picker's proposal)
	// by name; the app of today sends neither.
	ProjectID *string `json:"projectId"`
	WorkDir   *string `json:"workDir"`
	// Approvals "live" asks for live tool approvals: a tool outside
	// allowedTools waits for the user's answer (a permission_request
	// event, answered with POST /chat/{id}/approvals/{requestId}) instead
	// of ending the turn. Absent or null, the turn is as it always was.
	Approvals json.RawMessage `json:"approvals"`
	live      bool
}

// Validate checks "approvals" and leaves everything else to BeginTurn,
// which checks the message (a missing one is empty), the limits and the
// tools.
func (b *streamBody) Validate() error {
	if len(b.Approvals) == 0 || string(b.Approvals) == "null" {
		return nil
	}
	var mode string
	if json.Unmarshal(b.Approvals, &mode) != nil || mode != "live" {
		return ovrlrd.Errorf(ovrlrd.EINVALID, `Field "approvals" must be "live".`)
	}
	b.live = true
	return nil
}

func (s *server) begin(w http.ResponseWriter, r *http.Request, p auth.Principal, m *meter, allowTools bool) (ovrlrd.Turn, bool) {
	var body streamBody
	if err := Decode(r, &body); err != nil {
		return ovrlrd.Turn{}, m.answer(w, r, err)
	}
	if !allowTools && body.AllowedTools != nil {
		return ovrlrd.Turn{}, m.answer(w, r, ovrlrd.Errorf(ovrlrd.EINVALID, `Unknown field "allowedTools".`))
	}
	projectID, err := s.requestedProject(r.Context(), p.UserID, r.PathValue("id"), body)
	if err != nil {
		return ovrlrd.Turn{}, m.answer(w, r, err)
	}
	j, err := BeginTurn(r.Context(), s.Conversations, ovrlrd.TurnRequest{
		UserID: p.UserID, ConversationID: r.PathValue("id"), Message: body.Message, AllowedTools: body.AllowedTools,
		ProjectID: projectID, Limit: m.Count(), LiveApprovals: body.live,
	}, s.TurnRules)
	return j, m.answer(w, r, err)
}

// requestedProject is the id of the project a turn request names, once it
// is known to be the user's (a missing or foreign one is the same 404) and,
// for an existing conversation convID, to be the conversation's own (409
// before the stream starts). A conversation's workDir is the project's
// name when it started, so it names its project even after a rename.
func (s *server) requestedProject(ctx context.Context, userID, convID string, b streamBody) (string, error) {
	var (
		c   ovrlrd.Conversation
		p   ovrlrd.Project
		err error
	)
	switch {
	case b.ProjectID == nil && b.WorkDir == nil:
		return "", nil
	case b.ProjectID != nil && b.WorkDir != nil:
		return "", ovrlrd.Errorf(ovrlrd.EINVALID, `Send "projectId" or "workDir", not both.`)
	}
	if convID != "" {
		if c, err = s.Conversations.Conversation(ctx, userID, convID); err != nil {
			return "", err
		}
		if b.WorkDir != nil && c.ProjectID != "" && *b.WorkDir == c.WorkDir {
			return c.ProjectID, nil
		}
	}
	if b.ProjectID != nil {
		p, err = s.ProjectLookup.Project(ctx, userID, *b.ProjectID)
	} else {
		p, err = s.ProjectLookup.ProjectNamed(ctx, userID, *b.WorkDir)
	}
	if err != nil {
		return "", err
	}
	return p.ID, c.Accepts(p.ID)
}

// TurnRules are the server's limits on the turns its clients begin.
type TurnRules struct {
	AllowList      []string // tools a client may approve
	DailyBudgetUSD float64  // refuses new turns once a user's day cost this much; 0: no budget
}

// BeginTurn checks a request and writes what precedes the turn's run, in
// one transaction: the count against the user's limit and the budget, the
// conversation if new, the opening message and the lease. Its errors are
// answered as JSON, before any event. The turn's Found may still wait for
// the conversation's read.
func BeginTurn(ctx context.Context, st Conversations, req ovrlrd.TurnRequest, rules TurnRules) (ovrlrd.Turn, error) {
	if err := req.Check(rules.AllowList); err != nil {
		return ovrlrd.Turn{}, err
	}
	holder := rand.Text()
	started, err := st.StartTurn(ctx, ovrlrd.TurnStart{
		UserID: req.UserID, ConversationID: req.ConversationID,
		Message: req.Opening(), Holder: holder, Lease: ovrlrd.StartLease,
		Limit: req.Limit, BudgetUSD: rules.DailyBudgetUSD,
	})
	if err != nil {
		return ovrlrd.Turn{}, err
	}
	return ovrlrd.Turn{
		UserID: req.UserID, ConversationID: started.ConversationID, Holder: holder,
		Message: req.Message, AllowedTools: req.Tools(), New: req.ConversationID == "", ProjectID: req.ProjectID,
		OpeningID: started.Opening.ID, Found: started.Conversation, LiveApprovals: req.LiveApprovals,
	}, nil
}

// stream is POST /chat/stream and /chat/{id}/stream: the turn as
// Server-Sent Events. Errors before the stream are JSON with their status.
func (s *server) stream(w http.ResponseWriter, r *http.Request, p auth.Principal, m *meter) {
	j, ok := s.begin(w, r, p, m, true)
	if !ok {
		return
	}
	s.Turns.Run(r.Context(), j, eventStream(w))
}

// Reconnect is how long an EventSource waits before it reattaches to a
// dropped stream (its retry line).
const Reconnect = 2 * time.Second

// eventStream answers 200 with the headers of an event stream, and returns
// its writer.
func eventStream(w http.ResponseWriter) *sse.Writer {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	sw := sse.NewWriter(w)
	sw.Retry(Reconnect)
	return sw
}

// Watches reattaches clients to a turn's stream.
type Watches interface {
	// Follow streams, to the writer open returns, the events of convID's
	// turn after lastEventID ("" replays its latest turn); its error
	// comes before open is called.
	Follow(ctx context.Context, userID, convID, lastEventID string, open func() *sse.Writer) error
}

// reattach is GET /chat/{id}/stream: the rest of a turn's events, after
// the id in Last-Event-ID (or ?after=, for clients that cannot set the
// header), then the turn's live events until its terminal one. 204 tells
// an EventSource that nothing more will come.
func (s *server) reattach(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("after")
	}
	err := s.Watches.Follow(r.Context(), p.UserID, r.PathValue("id"), last, func() *sse.Writer { return eventStream(w) })
	if errors.Is(err, ovrlrd.ErrNothingToFollow) {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	s.failed(w, r, err)
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
func (s *server) buffered(w http.ResponseWriter, r *http.Request, p auth.Principal, m *meter) {
	j, ok := s.begin(w, r, p, m, false)
	if !ok {
		return
	}
	j.Buffered = true
	// The stream function is told the conversation's session and folders.
	j, err := j.Resolve(r.Context())
	if err == nil {
		err = s.Starter.Start(r.Context(), j)
	}
	if err != nil && !s.undoStart(r, j) {
		writeError(w, r, s.Log, err)
		return
	}
	// The wait ends answerMargin before the function's deadline.
	wait := s.BufferedWait
	if dl, ok := r.Context().Deadline(); ok {
		wait = min(wait, time.Until(dl)-answerMargin)
	}
	ctx, cancel := context.WithTimeout(r.Context(), max(wait, 0))
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		o, err := s.Conversations.Outcome(ctx, j.ConversationID, j.Holder)
		switch {
		case err == nil && o.Kind == ovrlrd.OutcomeError:
			writeError(w, r, s.Log, ovrlrd.Errorf(ovrlrd.EUNAVAILABLE, "%s", o.Error))
			return
		case err == nil:
			WriteJSON(w, http.StatusOK, bufferedResponse{ConversationID: j.ConversationID, Message: &o.Text})
			return
		case !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) && ctx.Err() == nil:
			s.Log.WarnContext(ctx, "waiting on a turn", "err", err)
		}
		select {
		case <-ctx.Done():
			WriteJSON(w, http.StatusAccepted, bufferedResponse{ConversationID: j.ConversationID})
			return
		case <-tick.C:
		}
	}
}

// undoStart removes what begin wrote for a turn that could not be started,
// so the conversation takes the next turn at once and shows no unanswered
// question. It reports whether the turn started after all (its run claimed
// it, e.g. an invoke that failed late after queueing the event): then the
// caller waits for it like any other.
func (s *server) undoStart(r *http.Request, j ovrlrd.Turn) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), undoTimeout)
	defer cancel()
	err := s.Conversations.UndoStartTurn(ctx, j)
	switch {
	case ovrlrd.IsCode(err, ovrlrd.ECONFLICT):
		s.Log.WarnContext(ctx, "a turn reported as not started is running")
		return true
	case err != nil:
		s.Log.ErrorContext(ctx, "undoing a turn that did not start", "err", err)
	}
	return false
}

// cancel is POST /chat/{id}/cancel: the running turn sees the flag at its
// next lease renewal and stops, saving what it produced.
func (s *server) cancel(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	conv, err := s.Conversations.Conversation(r.Context(), p.UserID, r.PathValue("id"))
	if err == nil {
		err = s.Conversations.CancelRun(r.Context(), conv.ID)
	}
	s.reply(w, r, err, successResponse{Success: true})
}
