package ovrlrd

import "time"

// AuditEvent is a security-relevant event kept for a retention period.
type AuditEvent struct {
	Action    string
	UserID    string // empty when not known
	IPHash    string // never the raw address
	UserAgent string
	Reason    string
	Time      time.Time
}

// RateDecision is the outcome of counting one request against a limit.
type RateDecision struct {
	Allowed   bool
	Limit     int
	Remaining int
	Reset     time.Time
}
