package storetest

import (
	"context"
	"crypto/rand"
	"errors"
	"time"

	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/store"
)

// The store takes a lease only with a turn's opening message, and never
// lists audit events or reads a day's usage back (the budget is a condition
// of the turn's start), so the helpers below go to the table directly, in
// the store's layout: a change there shows up as their tests failing.

// rawTimeout bounds one helper's call to DynamoDB Local.
const rawTimeout = time.Minute

// HoldRun gives convID's turn lease in this package's table to holder, from
// startedAt for lease, over whatever lease was there: another turn holding,
// or taking over, the conversation.
func HoldRun(ctx context.Context, convID, holder string, startedAt time.Time, lease time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, rawTimeout)
	defer cancel()
	exp := startedAt.Add(lease)
	return DB().Table(tableName).Put(map[string]any{
		"PK": "CONV#" + convID, "SK": "RUN", "holder": holder,
		"startedAt": startedAt.UnixMilli(), "expiresAt": exp.UnixMilli(), "ttl": exp.Add(24 * time.Hour).Unix(),
	}).Run(ctx)
}

// DayUsage is a user's totals for the current UTC day.
type DayUsage struct {
	Turns        int     `dynamo:"turns"`
	CostUSD      float64 `dynamo:"costUsd"`
	InputTokens  int64   `dynamo:"inputTokens"`
	OutputTokens int64   `dynamo:"outputTokens"`
}

// UsageToday reads userID's totals for the current UTC day in this
// package's table; none yet reads as zero.
func UsageToday(ctx context.Context, userID string) (DayUsage, error) {
	ctx, cancel := context.WithTimeout(ctx, rawTimeout)
	defer cancel()
	var u DayUsage
	err := DB().Table(tableName).Get("PK", "USER#"+userID).
		Range("SK", dynamo.Equal, "USAGE#"+time.Now().UTC().Format(time.DateOnly)).Consistent(true).One(ctx, &u)
	if errors.Is(err, dynamo.ErrNotFound) {
		err = nil
	}
	return u, err
}

type auditRecord struct {
	Action    string `dynamo:"action"`
	UserID    string `dynamo:"userId"`
	IPHash    string `dynamo:"ipHash"`
	UserAgent string `dynamo:"userAgent"`
	Reason    string `dynamo:"reason"`
	Time      int64  `dynamo:"time"`
}

// AuditEvents returns up to limit audit events in this package's table
// filed under subject (a user id, or "ip:"+hash as in AuditEvent.Subject),
// newest first.
func AuditEvents(ctx context.Context, subject string, limit int) ([]ovrlrd.AuditEvent, error) {
	ctx, cancel := context.WithTimeout(ctx, rawTimeout)
	defer cancel()
	var recs []auditRecord
	err := DB().Table(tableName).Get("PK", "AUDIT#"+subject).Order(dynamo.Descending).
		Consistent(true).Limit(limit).All(ctx, &recs)
	if err != nil {
		return nil, err
	}
	evs := make([]ovrlrd.AuditEvent, 0, len(recs))
	for _, r := range recs {
		evs = append(evs, ovrlrd.AuditEvent{
			Action: r.Action, UserID: r.UserID, IPHash: r.IPHash, UserAgent: r.UserAgent,
			Reason: r.Reason, Time: time.UnixMilli(r.Time).UTC(),
		})
	}
	return evs, nil
}

// NewConversation gives userID a conversation opened by the user message
// first and no turn running: what a turn that started and ended leaves,
// without its answer. It goes through the store, as the app's turns do.
func NewConversation(ctx context.Context, s *store.Store, userID, first string) (ovrlrd.Conversation, ovrlrd.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, rawTimeout)
	defer cancel()
	holder := "storetest-" + rand.Text()[:12]
	t, err := s.StartTurn(ctx, ovrlrd.TurnStart{
		UserID: userID, Holder: holder, Lease: time.Minute,
		Message: ovrlrd.NewMessage{Role: ovrlrd.RoleUser, Content: first},
	})
	if err != nil {
		return ovrlrd.Conversation{}, ovrlrd.Message{}, err
	}
	c, err := t.Conversation(ctx)
	if err != nil {
		return ovrlrd.Conversation{}, ovrlrd.Message{}, err
	}
	return c, t.Opening, s.ReleaseRun(ctx, c.ID, holder)
}
