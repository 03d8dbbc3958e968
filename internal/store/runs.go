package store

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

const (
	// runSK is the one-turn-per-conversation lease's key in the
	// conversation's partition, so deleting a conversation removes it too.
	runSK = "RUN"
	// runCleanupGrace lets DynamoDB sweep a lease whose holder died without
	// releasing it; until then an expired lease is simply overwritten.
	runCleanupGrace = 24 * time.Hour
	// attrClaimed marks a buffered turn whose run began. The event that runs
	// it can be delivered more than once; only the first delivery may claim
	// it, and a claimed lease is no longer undone.
	attrClaimed = "claimed"
)

// runItem is the lease. ExpiresAt is epoch milliseconds so the acquire
// condition can compare it.
type runItem struct {
	itemKey
	Holder    string `dynamo:"holder"`
	Cancel    bool   `dynamo:"cancel"`
	StartedAt int64  `dynamo:"startedAt"`
	ExpiresAt int64  `dynamo:"expiresAt"`
	TTL       int64  `dynamo:"ttl"`
}

func (s *Store) newRun(convID, holder string, lease time.Duration) runItem {
	now := s.now()
	exp := now.Add(lease)
	return runItem{
		itemKey: itemKey{convPrefix + convID, runSK}, Holder: holder,
		StartedAt: now.UnixMilli(), ExpiresAt: exp.UnixMilli(), TTL: exp.Add(runCleanupGrace).Unix(),
	}
}

// extendRun is the update that makes convID's lease expire lease from now.
func (s *Store) extendRun(convID string, lease time.Duration) *dynamo.Update {
	exp := s.now().Add(lease)
	return s.table.Update(attrPK, convPrefix+convID).Range(attrSK, runSK).
		Set("expiresAt", exp.UnixMilli()).Set(attrTTL, exp.Add(runCleanupGrace).Unix())
}

var errNoRun = ovrlrd.Errorf(ovrlrd.ENOTFOUND, "No turn is running for this conversation.")

var errTurnClaimed = ovrlrd.Errorf(ovrlrd.ECONFLICT, "The turn has already started, or no longer holds its conversation.")

// RenewRun extends holder's lease and returns the run, whose Cancel flag the
// turn polls on every renewal. ECONFLICT means the lease is no longer held.
func (s *Store) RenewRun(ctx context.Context, convID, holder string, lease time.Duration) (ovrlrd.Run, error) {
	var it runItem
	err := s.extendRun(convID, lease).If("'holder' = ?", holder).Value(ctx, &it)
	if err := written("renew run", err, ovrlrd.Wrap(ovrlrd.ECONFLICT, "The turn lost its lease.", err)); err != nil {
		return ovrlrd.Run{}, err
	}
	return it.run(), nil
}

// ClaimRun marks holder's lease as claimed by the run about to start, and
// renews it. ECONFLICT means this run must not start: the lease is another
// holder's, or gone (the turn ended, or was undone), or already claimed by
// an earlier delivery of the same turn. A lease that expired while its
// event waited is still claimed if no other turn took the conversation:
// its user is waiting for the answer.
func (s *Store) ClaimRun(ctx context.Context, convID, holder string, lease time.Duration) error {
	err := s.extendRun(convID, lease).Set(attrClaimed, true).
		If("'holder' = ? AND attribute_not_exists($)", holder, attrClaimed).
		Run(ctx)
	return written("claim run", err, errTurnClaimed)
}

// AcquireRun takes convID's lease for holder when no live turn holds it,
// for work that must not overlap a turn (a push); ECONFLICT while one runs.
// The caller checks that the conversation is its user's, and releases the
// lease with ReleaseRun.
func (s *Store) AcquireRun(ctx context.Context, convID, holder string, lease time.Duration) error {
	run := s.newRun(convID, holder, lease)
	err := s.table.Put(run).If("attribute_not_exists($) OR 'expiresAt' < ?", attrPK, run.StartedAt).Run(ctx)
	return written("acquire run", err, errTurnRunning)
}

// CancelRun asks the running turn to stop; the turn sees it when it renews.
func (s *Store) CancelRun(ctx context.Context, convID string) error {
	err := s.table.Update(attrPK, convPrefix+convID).Range(attrSK, runSK).
		Set("cancel", true).
		// An expired lease has no live turn to stop.
		If("attribute_exists('PK') AND 'expiresAt' >= ?", s.nowMillis()).
		Run(ctx)
	return written("cancel run", err, errNoRun)
}

// Run returns the conversation's live lease; an expired one counts as none.
func (s *Store) Run(ctx context.Context, convID string) (ovrlrd.Run, error) {
	var it runItem
	if err := s.get(ctx, "get run", convPrefix+convID, runSK, &it, errNoRun); err != nil {
		return ovrlrd.Run{}, err
	}
	if it.ExpiresAt < s.nowMillis() {
		return ovrlrd.Run{}, errNoRun
	}
	return it.run(), nil
}

func (it runItem) run() ovrlrd.Run {
	return ovrlrd.Run{
		ConversationID: strings.TrimPrefix(it.PK, convPrefix), Holder: it.Holder, Cancel: it.Cancel,
		StartedAt: timeOf(it.StartedAt), ExpiresAt: timeOf(it.ExpiresAt),
	}
}

// ReleaseRun ends holder's lease. A lease already gone is fine (the turn
// may finish after its lease expired and was swept); one taken over by
// another holder is left alone and reported as ECONFLICT.
func (s *Store) ReleaseRun(ctx context.Context, convID, holder string) error {
	err := s.table.Delete(attrPK, convPrefix+convID).Range(attrSK, runSK).
		If("attribute_not_exists('PK') OR 'holder' = ?", holder).Run(ctx)
	return written("release run", err, ovrlrd.Wrap(ovrlrd.ECONFLICT, "The turn's lease is held by another run.", err))
}

// ActiveTurn returns the conversation's running turn, nil when none runs.
// The caller checks that the conversation is its user's.
func (s *Store) ActiveTurn(ctx context.Context, convID string) (*ovrlrd.ActiveTurn, error) {
	if !isID(convID) {
		return nil, nil
	}
	run, err := s.Run(ctx, convID)
	switch {
	case errors.Is(err, errNoRun):
		return nil, nil
	case err != nil:
		return nil, err
	}
	last, err := s.LastEvent(ctx, convID, run.Holder)
	if err != nil {
		return nil, err
	}
	a := &ovrlrd.ActiveTurn{ID: run.Holder, StartedAt: ovrlrd.Timestamp(run.StartedAt)}
	if last > 0 {
		a.LastEventID = new(ovrlrd.EventID(run.Holder, last))
	}
	return a, nil
}
