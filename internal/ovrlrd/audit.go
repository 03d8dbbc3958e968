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

// Subject is whom the event is filed under: the user when known, otherwise
// the hashed address, so failed sign-ins from one client can be listed
// together.
func (e AuditEvent) Subject() string {
	if e.UserID == "" && e.IPHash != "" {
		return "ip:" + e.IPHash
	}
	return e.UserID
}
