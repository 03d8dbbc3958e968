package ovrlrd

import (
	"cmp"
	"context"
	"time"
)

// Limits of a turn request, from the app's contract.
const (
	MaxMessage      = 100_000 // characters of a message
	MaxAllowedTools = 50      // tools a user approves at once
)

// TurnRequest is a turn as a client asks for it.
type TurnRequest struct {
	UserID         string
	ConversationID string   // empty: start a new conversation
	Message        string   // the prompt, 1 to MaxMessage characters
	AllowedTools   []string // tools the user approved for this turn
	// ProjectID is the project the request names, checked to be the
	// user's; empty leaves it to the conversation (its own, or for a new
	// one the user's default).
	ProjectID string
	// Limit, if set, counts the request against its user's allowance in
	// the transaction that begins the turn.
	Limit RateLimit
	// LiveApprovals: a tool outside AllowedTools waits for the user's
	// answer (permission_request) instead of ending the turn.
	LiveApprovals bool
}

// Turn is a begun turn, everything needed to run it: in this process, or
// in the stream function after the chat function began it (the JSON is
// that event's).
type Turn struct {
	UserID         string `json:"userId"`
	ConversationID string `json:"conversationId"`
	// Holder is the turn's id: it holds the conversation's lease, and a
	// delivery of the turn's event that cannot claim it does nothing. Its
	// name on the wire stays "holder": an event queued by the chat
	// function before a deploy reaches the stream function after it.
	Holder          string   `json:"holder"`
	Message         string   `json:"message"`
	AllowedTools    []string `json:"allowedTools,omitempty"`
	ClaudeSessionID string   `json:"claudeSessionId,omitempty"`
	Title           string   `json:"title,omitempty"`
	// Workspace is the version of the saved folders that goes with
	// ClaudeSessionID.
	Workspace string `json:"workspace,omitempty"`
	New       bool   `json:"new,omitempty"` // the turn created its conversation
	// OpeningID is the id of the message that opened the turn, so a turn
	// that never starts can be undone.
	OpeningID string `json:"openingId,omitempty"`
	// ProjectID is the conversation's project: the one the request named,
	// or, once resolved, the conversation's own.
	ProjectID string `json:"projectId,omitempty"`
	// Checkout is the conversation's (Conversation.Checkout): the turn
	// checks the project out although the conversation has a session.
	Checkout bool `json:"checkout,omitempty"`
	// Buffered marks a turn started for POST /chat: nobody streams it, and
	// its invocation may be delivered more than once.
	Buffered bool `json:"buffered,omitempty"`
	// LiveApprovals is the request's: see TurnRequest.
	LiveApprovals bool `json:"liveApprovals,omitempty"`
	// Found, when set, is the conversation's read that the turn's begin
	// did not wait for (TurnStarted.Conversation). Resolve fills
	// ClaudeSessionID, Title and Workspace from it.
	Found func(context.Context) (Conversation, error) `json:"-"`
}

// Resolve returns j with what its conversation gives filled in, once
// Found's read has answered.
func (j Turn) Resolve(ctx context.Context) (Turn, error) {
	if j.Found == nil {
		return j, nil
	}
	c, err := j.Found(ctx)
	if err != nil {
		return j, err
	}
	if err := c.Accepts(j.ProjectID); err != nil {
		return j, err
	}
	j.Found, j.Workspace = nil, c.Workspace
	j.ProjectID = cmp.Or(c.ProjectID, j.ProjectID)
	j.Checkout = c.Checkout
	if c.ClaudeSessionID != nil {
		j.ClaudeSessionID = *c.ClaudeSessionID
	}
	if c.Title != nil {
		j.Title = *c.Title
	}
	return j, nil
}

// TurnOutcome is how a turn ended, as its conversation keeps it.
type TurnOutcome struct {
	Kind  OutcomeKind `dynamo:"kind"`
	Text  string      `dynamo:"text"`  // the assistant's text, segments joined
	Error string      `dynamo:"error"` // for an error: what the app shows
}

// TurnStart is what a turn writes before the CLI starts: the message that
// opens it and the lease that keeps it the conversation's only turn.
type TurnStart struct {
	UserID         string
	ConversationID string // empty: a new conversation
	Message        NewMessage
	Holder         string
	Lease          time.Duration
	// Limit, if valid, counts the turn against the user's allowance in
	// the same transaction: ErrRateLimited when it is spent.
	Limit RateLimit
	// BudgetUSD, if positive, refuses the turn once the user's day cost
	// this much (BudgetSpent).
	BudgetUSD float64
}

// TurnStarted is what StartTurn wrote, and the read it began alongside.
type TurnStarted struct {
	ConversationID string
	Opening        Message // the message that opened the turn
	// Conversation returns the turn's conversation, with the session,
	// folders and title the turn resumes. Its read runs beside the start's
	// transaction and may answer after it, so only what needs the
	// conversation waits for it: not the turn's first byte.
	Conversation func(context.Context) (Conversation, error)
}

// BudgetSpent refuses a turn of a user whose day cost budget dollars.
func BudgetSpent(budget float64) error {
	return Errorf(ERATELIMIT, "Your daily budget of $%.2f is spent. It renews at midnight UTC.", budget)
}

// TurnFinish is what a turn writes when it ends.
type TurnFinish struct {
	UserID         string
	ConversationID string
	Holder         string
	Segments       []string // assistant messages, in order
	SessionID      string   // the CLI session to resume next time; "" keeps the stored one
	Workspace      string   // the version of the folders saved with it; "" keeps the stored one
	// Forget clears the session id and the folders' version: the earlier
	// context is gone, and the next turn starts afresh.
	Forget bool
	Title  string // "" keeps the stored one
	// Notice, if set, is kept as a system message after the segments, for
	// an outcome nobody saw streamed (a buffered turn's error).
	Notice  string
	Outcome TurnOutcome
	Usage   Usage // what the turn cost; added to the conversation and the user's day
	// Unleased saves a turn that lost its lease but whose conversation
	// still exists: what its user saw (messages, outcome, cost), never the
	// session, the folders or the title, which belong to the lease holder.
	Unleased bool
	// Log is the end of the turn's event log, its terminal event last,
	// written with the rest: a client that reattaches finds the terminal
	// event once the turn is saved, never before.
	Log EventBatch
}

// ErrLeaseLost is what saving a turn's end answers when its lease is no
// longer its own: another turn took the conversation, or it was deleted.
var ErrLeaseLost = Errorf(ECONFLICT, "The turn no longer holds its conversation.")
