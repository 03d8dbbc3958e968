package ovrlrd

import "time"

// Run is the lease that makes one turn per conversation the rule across all
// instances. A lease whose holder died expires at ExpiresAt.
type Run struct {
	ConversationID string
	Holder         string
	Cancel         bool
	StartedAt      time.Time
	ExpiresAt      time.Time
}
