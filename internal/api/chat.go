package api

import (
	"context"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/ovrlrd/cloud/internal/auth"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// Conversations is the conversation state the chat routes use.
type Conversations interface {
	Conversation(ctx context.Context, userID, convID string) (ovrlrd.Conversation, error)
	ListConversations(ctx context.Context, userID string, page ovrlrd.Page) ([]ovrlrd.Conversation, string, error)
	Messages(ctx context.Context, convID string, page ovrlrd.Page) ([]ovrlrd.Message, string, error)
	AppendMessage(ctx context.Context, userID, convID string, role ovrlrd.Role, content string) (ovrlrd.Message, error)
	DeleteConversation(ctx context.Context, userID, convID string) error
}

// ConversationCleaner removes what is kept for a deleted conversation
// outside the table (transcripts, workspaces).
type ConversationCleaner func(ctx context.Context, userID, convID string) error

func (s *server) chatRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /chat", s.authed(classRead, s.listConversations))
	mux.HandleFunc("GET /chat/{id}", s.authed(classRead, s.getConversation))
	mux.HandleFunc("DELETE /chat/{id}", s.authed(classWrite, s.deleteConversation))
	mux.HandleFunc("POST /chat/{id}/events", s.authed(classWrite, s.postEvent))
}

// MaxContent is the longest message, in characters.
const MaxContent = 100_000

type listResponse struct {
	Conversations []ovrlrd.Conversation `json:"conversations"`
	HasMore       bool                  `json:"hasMore"`
	NextCursor    *string               `json:"nextCursor"`
}

type detailResponse struct {
	Conversation ovrlrd.Conversation `json:"conversation"`
	Messages     []ovrlrd.Message    `json:"messages"`
	HasMore      bool                `json:"hasMore"`
	NextCursor   *string             `json:"nextCursor"`
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

// next turns the store's cursor into the response's nextCursor.
func next(cursor string) (bool, *string) {
	if cursor == "" {
		return false, nil
	}
	return true, &cursor
}

func (s *server) listConversations(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	pg, err := page(r, 20)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	convs, cursor, err := s.convs.ListConversations(r.Context(), p.UserID, pg)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	resp := listResponse{Conversations: convs}
	resp.HasMore, resp.NextCursor = next(cursor)
	writeJSON(w, http.StatusOK, resp)
}

func (s *server) getConversation(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	pg, err := page(r, 50)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	conv, err := s.convs.Conversation(r.Context(), p.UserID, r.PathValue("id"))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	msgs, cursor, err := s.convs.Messages(r.Context(), conv.ID, pg)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	resp := detailResponse{Conversation: conv, Messages: msgs}
	resp.HasMore, resp.NextCursor = next(cursor)
	writeJSON(w, http.StatusOK, resp)
}

// deleteConversation removes the conversation first, so a running turn
// loses its lease and nothing can be appended any more, then what is kept
// for it elsewhere. Should either stop part way, the app's retry finds the
// conversation deleted by its caller and does both again.
func (s *server) deleteConversation(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	id := r.PathValue("id")
	if err := s.convs.DeleteConversation(r.Context(), p.UserID, id); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	for _, clean := range s.cleaners {
		if err := clean(r.Context(), p.UserID, id); err != nil {
			writeError(w, r, s.log, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, successResponse{Success: true})
}

// eventBody is POST /chat/{id}/events: the app records a denial with it.
type eventBody struct {
	Role    *ovrlrd.Role `json:"role"`
	Content *string      `json:"content"`
}

func (b *eventBody) Validate() error {
	if b.Role == nil {
		system := ovrlrd.RoleSystem
		b.Role = &system
	}
	if !b.Role.Valid() {
		return ovrlrd.Errorf(ovrlrd.EINVALID, `Field "role" must be "user", "assistant" or "system".`)
	}
	return validContent("content", b.Content)
}

// validContent checks a message text: present, 1 to MaxContent characters.
func validContent(field string, v *string) error {
	switch {
	case v == nil || *v == "":
		return ovrlrd.Errorf(ovrlrd.EINVALID, "Field %q is required.", field)
	case !utf8.ValidString(*v):
		return ovrlrd.Errorf(ovrlrd.EINVALID, "Field %q must be valid UTF-8.", field)
	case utf8.RuneCountInString(*v) > MaxContent:
		return ovrlrd.Errorf(ovrlrd.EINVALID, "Field %q must be at most %d characters.", field, MaxContent)
	}
	return nil
}

func (s *server) postEvent(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	var body eventBody
	if err := Decode(r, &body); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	msg, err := s.convs.AppendMessage(r.Context(), p.UserID, r.PathValue("id"), *body.Role, *body.Content)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, successResponse{Success: true, MessageID: msg.ID})
}
