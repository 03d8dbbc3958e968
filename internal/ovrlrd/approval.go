package ovrlrd

import (
	"encoding/json"
	"time"
)

// Approval is a tool call a running turn asks its user to allow, live: the
// turn waits for the answer instead of failing. The turn and the answer
// usually run in different environments; the table is where they meet.
type Approval struct {
	ID             string          `json:"requestId"`
	ConversationID string          `json:"conversationId"`
	UserID         string          `json:"-"`
	TurnID         string          `json:"-"`
	ToolName       string          `json:"toolName"`
	ToolInput      json.RawMessage `json:"toolInput"`
	ExpiresAt      Timestamp       `json:"expiresAt"`
	// Decision is empty while the request waits for its answer.
	Decision Decision `json:"-"`
	Message  string   `json:"-"` // the user's, given with a denial
}

// Expired reports whether a is past its time at now.
func (a Approval) Expired(now time.Time) bool { return !now.Before(time.Time(a.ExpiresAt)) }

// Decision is a user's answer to an Approval.
type Decision string

// The answers.
const (
	DecisionAllow Decision = "allow"
	DecisionDeny  Decision = "deny"
)

// Valid reports whether d is one of the answers.
func (d Decision) Valid() bool { return d == DecisionAllow || d == DecisionDeny }

// Answering errors: a second, different answer, and one after the turn
// stopped waiting (the request expired, was withdrawn, or its turn ended).
var (
	ErrApprovalAnswered = Errorf(ECONFLICT, "This request was already answered otherwise.")
	ErrApprovalExpired  = Errorf(EGONE, "This request no longer waits for an answer: it expired, or its turn ended.")
)
