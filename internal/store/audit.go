package store

import (
	"context"
	"crypto/rand"
	"time"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// auditSortLayout is RFC 3339 with a fixed nine-digit fraction: RFC3339Nano
// trims trailing zeros, which breaks the string order of sort keys.
const auditSortLayout = "2006-01-02T15:04:05.000000000Z07:00"

// auditItem is one event, filed under its subject (a user, or a hashed
// address when there is no user) and ordered by time; the random suffix
// keeps two events in the same nanosecond apart.
type auditItem struct {
	itemKey
	Action    string `dynamo:"action"`
	UserID    string `dynamo:"userId"`
	IPHash    string `dynamo:"ipHash"`
	UserAgent string `dynamo:"userAgent"`
	Reason    string `dynamo:"reason"`
	Time      int64  `dynamo:"time"` // epoch milliseconds
	TTL       int64  `dynamo:"ttl"`
}

// PutAudit records ev for retention. A zero ev.Time means now.
func (s *Store) PutAudit(ctx context.Context, ev ovrlrd.AuditEvent, retention time.Duration) error {
	subject := ev.Subject()
	if ev.Action == "" || subject == "" || retention <= 0 {
		return ovrlrd.Errorf(ovrlrd.EINVALID, "An audit event needs an action, a subject and a retention.")
	}
	at := ev.Time
	if at.IsZero() {
		at = s.now()
	}
	at = at.UTC()
	it := auditItem{
		itemKey: itemKey{"AUDIT#" + subject, at.Format(auditSortLayout) + "#" + rand.Text()},
		Action:  ev.Action, UserID: ev.UserID, IPHash: ev.IPHash, UserAgent: ev.UserAgent, Reason: ev.Reason,
		Time: at.UnixMilli(), TTL: at.Add(retention).Unix(),
	}
	return written("put audit event", s.table.Put(it).Run(ctx), nil)
}
