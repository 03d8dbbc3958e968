package store

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// runCleanupGrace lets DynamoDB sweep a lease whose holder died without
// releasing it; until then an expired lease is simply overwritten.
const runCleanupGrace = 24 * time.Hour

// runItem is the one-turn-per-conversation lease. It sits in the
// conversation's partition so deleting a conversation removes it too.
// ExpiresAt is epoch milliseconds so the acquire condition can compare it.
type runItem struct {
	PK        string `dynamo:"PK,hash"`
	SK        string `dynamo:"SK,range"`
	Holder    string `dynamo:"holder"`
	Cancel    bool   `dynamo:"cancel"`
	StartedAt int64  `dynamo:"startedAt"`
	ExpiresAt int64  `dynamo:"expiresAt"`
	TTL       int64  `dynamo:"ttl"`
}

const runSK = "RUN"

func runPK(convID string) string { return "CONV#" + convID }

func (it runItem) domain() ovrlrd.Run {
	return ovrlrd.Run{
		ConversationID: strings.TrimPrefix(it.PK, "CONV#"),
		Holder:         it.Holder,
		Cancel:         it.Cancel,
		StartedAt:      timeOf(it.StartedAt),
		ExpiresAt:      timeOf(it.ExpiresAt),
	}
}

func errNoRun() error {
	return ovrlrd.Errorf(ovrlrd.ENOTFOUND, "No turn is running for this conversation.")
}

// RenewRun extends holder's lease and returns the run, whose Cancel flag the
// turn polls on every renewal. ECONFLICT means the lease is no longer held.
func (s *Store) RenewRun(ctx context.Context, convID, holder string, lease time.Duration) (ovrlrd.Run, error) {
	if convID == "" || holder == "" || lease <= 0 {
		return ovrlrd.Run{}, ovrlrd.Errorf(ovrlrd.EINVALID, "A run needs a conversation, a holder and a lease.")
	}
	exp := s.now().Add(lease)
	var it runItem
	err := s.table.Update(attrPK, runPK(convID)).Range(attrSK, runSK).
		Set("expiresAt", exp.UnixMilli()).
		Set("ttl", ttlOf(exp.Add(runCleanupGrace))).
		If("'holder' = ?", holder).
		Value(ctx, &it)
	if dynamo.IsCondCheckFailed(err) {
		return ovrlrd.Run{}, ovrlrd.Wrap(ovrlrd.ECONFLICT, "The turn lost its lease.", err)
	}
	if err != nil {
		return ovrlrd.Run{}, dbError("renew run", err)
	}
	return it.domain(), nil
}

// CancelRun asks the running turn to stop; the turn sees it when it renews.
func (s *Store) CancelRun(ctx context.Context, convID string) error {
	if convID == "" {
		return errNoRun()
	}
	err := s.table.Update(attrPK, runPK(convID)).Range(attrSK, runSK).
		Set("cancel", true).
		// An expired lease has no live turn to stop.
		If("attribute_exists('PK') AND 'expiresAt' >= ?", s.now().UnixMilli()).
		Run(ctx)
	if dynamo.IsCondCheckFailed(err) {
		return errNoRun()
	}
	if err != nil {
		return dbError("cancel run", err)
	}
	return nil
}

// Run returns the conversation's live lease; an expired one counts as none.
func (s *Store) Run(ctx context.Context, convID string) (ovrlrd.Run, error) {
	if convID == "" {
		return ovrlrd.Run{}, errNoRun()
	}
	var it runItem
	err := s.table.Get(attrPK, runPK(convID)).Range(attrSK, dynamo.Equal, runSK).
		Consistent(true).One(ctx, &it)
	if errors.Is(err, dynamo.ErrNotFound) {
		return ovrlrd.Run{}, errNoRun()
	}
	if err != nil {
		return ovrlrd.Run{}, dbError("get run", err)
	}
	if it.ExpiresAt < s.now().UnixMilli() {
		return ovrlrd.Run{}, errNoRun()
	}
	return it.domain(), nil
}

// ReleaseRun ends holder's lease. A lease already gone is fine (the turn
// may finish after its lease expired and was swept); one taken over by
// another holder is left alone and reported as ECONFLICT.
func (s *Store) ReleaseRun(ctx context.Context, convID, holder string) error {
	if convID == "" || holder == "" {
		return ovrlrd.Errorf(ovrlrd.EINVALID, "A run needs a conversation and a holder.")
	}
	err := s.table.Delete(attrPK, runPK(convID)).Range(attrSK, runSK).
		If("attribute_not_exists('PK') OR 'holder' = ?", holder).Run(ctx)
	if dynamo.IsCondCheckFailed(err) {
		return ovrlrd.Wrap(ovrlrd.ECONFLICT, "The turn's lease is held by another run.", err)
	}
	if err != nil {
		return dbError("release run", err)
	}
	return nil
}
