package store

import (
	"context"
	"errors"
	"time"

	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// A lease's "claimed" attribute marks a buffered turn whose run began. The
// event that runs it can be delivered more than once; only the first
// delivery may claim it, and a claimed lease is no longer undone.
const attrClaimed = "claimed"

func errTurnClaimed() error {
	return ovrlrd.Errorf(ovrlrd.ECONFLICT, "The turn has already started, or no longer holds its conversation.")
}

// ClaimRun marks holder's lease as claimed by the run about to start, and
// renews it. ECONFLICT means this run must not start: the lease is another
// holder's, or gone (the turn ended, or was undone), or already claimed by
// an earlier delivery of the same turn. A lease that expired while its
// event waited is still claimed if no other turn took the conversation:
// its user is waiting for the answer.
func (s *Store) ClaimRun(ctx context.Context, convID, holder string, lease time.Duration) error {
	if convID == "" || holder == "" || lease <= 0 {
		return ovrlrd.Errorf(ovrlrd.EINVALID, "A run needs a conversation, a holder and a lease.")
	}
	now := s.now()
	exp := now.Add(lease)
	err := s.table.Update(attrPK, runPK(convID)).Range(attrSK, runSK).
		Set(attrClaimed, true).
		Set("expiresAt", exp.UnixMilli()).
		Set("ttl", ttlOf(exp.Add(runCleanupGrace))).
		If("'holder' = ? AND attribute_not_exists($)", holder, attrClaimed).
		Run(ctx)
	if dynamo.IsCondCheckFailed(err) {
		return errTurnClaimed()
	}
	if err != nil {
		return dbError("claim run", err)
	}
	return nil
}

// UndoStartTurn removes what StartTurn wrote, for a turn that could not be
// started: the lease, the opening message and, for a new conversation, the
// conversation. It is one transaction that requires the lease to be still
// holder's and unclaimed, so nothing is undone once the turn runs; then it
// answers ECONFLICT.
func (s *Store) UndoStartTurn(ctx context.Context, t ovrlrd.Turn) error {
	if !isID(t.ConversationID) || t.Holder == "" {
		return ovrlrd.Errorf(ovrlrd.EINVALID, "A started turn needs a conversation and a holder.")
	}
	tx := s.db.WriteTx().Delete(s.table.Delete(attrPK, runPK(t.ConversationID)).Range(attrSK, runSK).
		If("'holder' = ? AND attribute_not_exists($)", t.Holder, attrClaimed))
	sk, err := s.messageSK(ctx, t.ConversationID, t.OpeningID)
	switch {
	case err == nil:
		tx.Delete(s.table.Delete(attrPK, convPrefix+t.ConversationID).Range(attrSK, sk))
	case !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND):
		return err
	}
	if t.New {
		tx.Delete(s.table.Delete(attrPK, userPK(t.UserID)).Range(attrSK, convSK(t.ConversationID)))
	}
	// Idempotent: the SDK's resend of a write that landed is not refused
	// by the lease it already deleted.
	err = tx.Idempotent(true).Run(ctx)
	if reasonCode(cancelReasons(err), 0) == reasonCondition {
		return errTurnClaimed()
	}
	if err != nil {
		return dbError("undo turn start", err)
	}
	return nil
}

// messageSK finds the sort key of message id, which holds its time. The
// newest messages are read first: the one a turn just opened with is among
// them.
func (s *Store) messageSK(ctx context.Context, convID, id string) (string, error) {
	if id == "" {
		return "", ovrlrd.Errorf(ovrlrd.ENOTFOUND, "Message not found")
	}
	var found []msgItem
	err := s.table.Get(attrPK, convPrefix+convID).Range(attrSK, dynamo.BeginsWith, msgPrefix).
		Filter("'id' = ?", id).Order(dynamo.Descending).Consistent(true).
		Project(attrSK).Limit(1).RequestLimit(2).All(ctx, &found)
	if err != nil && !errors.Is(err, dynamo.ErrNotFound) {
		return "", dbError("find message", err)
	}
	if len(found) == 0 {
		return "", ovrlrd.Errorf(ovrlrd.ENOTFOUND, "Message not found")
	}
	return found[0].SK, nil
}
