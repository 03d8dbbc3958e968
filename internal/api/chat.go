package api

import (
	"cmp"
	"context"
	"net/http"
	"strconv"
	"sync"

	"github.com/ovrlrd/cloud/internal/auth"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/sse"
)

// Conversations is the conversation state the routes use, turns' included.
type Conversations interface {
	Conversation(ctx context.Context, userID, convID string) (ovrlrd.Conversation, error)
	ListConversations(ctx context.Context, userID string, page ovrlrd.Page) ([]ovrlrd.Conversation, string, error)
	Messages(ctx context.Context, convID string, page ovrlrd.Page) ([]ovrlrd.Message, string, error)
	// AppendMessage counts the request against each of limits in the
	// same transaction.
	AppendMessage(ctx context.Context, userID, convID string, role ovrlrd.Role, content string, limits ...ovrlrd.RateLimit) (ovrlrd.Message, error)
	DeleteConversation(ctx context.Context, userID, convID string) error
	StartTurn(ctx context.Context, t ovrlrd.TurnStart) (ovrlrd.TurnStarted, error)
	CancelRun(ctx context.Context, convID string) error
	Outcome(ctx context.Context, convID, holder string) (ovrlrd.TurnOutcome, error)
	UndoStartTurn(ctx context.Context, t ovrlrd.Turn) error
	// ActiveTurn is the conversation's running turn, nil when none.
	ActiveTurn(ctx context.Context, convID string) (*ovrlrd.ActiveTurn, error)
	// PendingApprovals are the conversation's requests for a live
	// approval that still wait for an answer, of any of its turns.
	PendingApprovals(ctx context.Context, convID string) ([]ovrlrd.Approval, error)
	// DecideApproval records userID's answer to a request, once; recorded
	// is false for the same answer given again.
	DecideApproval(ctx context.Context, userID, convID, id string, d ovrlrd.Decision, message string) (a ovrlrd.Approval, recorded bool, err error)
}

// ConversationCleaner removes what is kept for a deleted conversation
// outside the table (transcripts, workspaces).
type ConversationCleaner func(ctx context.Context, userID, convID string) error

type listResponse struct {
	Conversations []ovrlrd.Conversation `json:"conversations"`
	more
}

type detailResponse struct {
	Conversation ovrlrd.Conversation `json:"conversation"`
	Messages     []ovrlrd.Message    `json:"messages"`
	more
	// ActiveTurn (null when none) tells a client it can reattach; the app
	// ignores it.
	ActiveTurn *ovrlrd.ActiveTurn `json:"activeTurn"`
	// PendingApprovals are the tools the running turn waits on the user
	// to allow: a client that lost its stream can still answer them. [],
	// never null, when there are none or no turn runs.
	PendingApprovals []ovrlrd.Approval `json:"pendingApprovals"`
}

// more ends every page: whether there is another, and how to ask for it.
type more struct {
	HasMore    bool    `json:"hasMore"`
	NextCursor *string `json:"nextCursor"`
}

type successResponse struct {
	Success   bool   `json:"success"`
	MessageID string `json:"messageId,omitempty"`
}

// page reads ?limit= and ?cursor=.
func page(r *http.Request, def int) (ovrlrd.Page, error) {
	p := ovrlrd.Page{Limit: def, Cursor: r.URL.Query().Get("cursor")}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return p, ovrlrd.Errorf(ovrlrd.EINVALID, `Query parameter "limit" must be an integer from 1 to 100.`)
		}
		p.Limit = n
	}
	return p, nil
}

// next turns the store's cursor into the end of the response.
func next(cursor string) more {
	if cursor == "" {
		return more{}
	}
	return more{HasMore: true, NextCursor: &cursor}
}

func (s *server) listConversations(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	pg, err := page(r, 20)
	if s.failed(w, r, err) {
		return
	}
	convs, cursor, err := s.Conversations.ListConversations(r.Context(), p.UserID, pg)
	s.reply(w, r, err, listResponse{Conversations: convs, more: next(cursor)})
}

func (s *server) getConversation(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	pg, err := page(r, 50)
	if s.failed(w, r, err) {
		return
	}
	// The messages, the running turn and the requests it waits on are read
	// alongside the conversation, whose read proves the user owns it: none
	// of them is sent when it does not.
	var (
		msgs                      []ovrlrd.Message
		cursor                    string
		active                    *ovrlrd.ActiveTurn
		pending                   []ovrlrd.Approval
		msgsErr, turnErr, pendErr error
		read                      sync.WaitGroup
	)
	id := r.PathValue("id")
	read.Go(func() { msgs, cursor, msgsErr = s.Conversations.Messages(r.Context(), id, pg) })
	read.Go(func() { active, turnErr = s.Conversations.ActiveTurn(r.Context(), id) })
	read.Go(func() { pending, pendErr = s.Conversations.PendingApprovals(r.Context(), id) })
	conv, err := s.Conversations.Conversation(r.Context(), p.UserID, id)
	read.Wait()
	switch {
	case turnErr != nil:
		// A hint the app ignores never costs it the conversation.
		s.Log.WarnContext(r.Context(), "reading the running turn", "err", turnErr)
		active = nil
	case active != nil && active.ID != conv.LastTurn:
		active = nil // the lease is held by other work (a push), not a turn
	}
	if pendErr != nil {
		// Nor do the requests it waits on: they are [], and the turn's
		// stream has them.
		s.Log.WarnContext(r.Context(), "reading the pending approvals", "err", pendErr)
	}
	s.reply(w, r, cmp.Or(err, msgsErr), detailResponse{
		Conversation: conv, Messages: msgs, more: next(cursor), ActiveTurn: active,
		PendingApprovals: waitingOn(active, pending, pendErr),
	})
}

// waitingOn are the requests of pending that the running turn active waits
// on: none when no turn runs, or when they could not be read. A request of
// an earlier turn that was never closed is not answered by anyone. Each
// tool input is as the turn's permission_request event sent it.
func waitingOn(active *ovrlrd.ActiveTurn, pending []ovrlrd.Approval, err error) []ovrlrd.Approval {
	out := []ovrlrd.Approval{}
	if active == nil || err != nil {
		return out
	}
	for _, a := range pending {
		if a.TurnID == active.ID {
			a.ToolInput = sse.NormalizeToolInput(a.ToolInput)
			out = append(out, a)
		}
	}
	return out
}

// deleteConversation removes the conversation first, so a running turn
// loses its lease and nothing can be appended any more, then what is kept
// for it elsewhere. Should either stop part way, the app's retry finds the
// conversation deleted by its caller and does both again.
func (s *server) deleteConversation(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	id := r.PathValue("id")
	err := s.Conversations.DeleteConversation(r.Context(), p.UserID, id)
	for _, clean := range s.Cleaners {
		if err == nil {
			err = clean(r.Context(), p.UserID, id)
		}
	}
	s.reply(w, r, err, successResponse{Success: true})
}

// eventBody is POST /chat/{id}/events: the app records a denial with it.
type eventBody struct {
	Role    *ovrlrd.Role `json:"role"`
	Content string       `json:"content"`
}

func (b *eventBody) Validate() error {
	if b.Role == nil {
		b.Role = new(ovrlrd.RoleSystem)
	}
	if !b.Role.Valid() {
		return ovrlrd.Errorf(ovrlrd.EINVALID, `Field "role" must be "user", "assistant" or "system".`)
	}
	return ovrlrd.CheckText("content", b.Content)
}

func (s *server) postEvent(w http.ResponseWriter, r *http.Request, p auth.Principal, m *meter) {
	var body eventBody
	if err := Decode(r, &body); err != nil {
		m.answer(w, r, err)
		return
	}
	msg, err := s.Conversations.AppendMessage(r.Context(), p.UserID, r.PathValue("id"), *body.Role, body.Content, m.Count())
	if m.answer(w, r, err) {
		WriteJSON(w, http.StatusOK, successResponse{Success: true, MessageID: msg.ID})
	}
}
