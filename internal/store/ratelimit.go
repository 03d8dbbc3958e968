package store

import (
	"context"
	"strconv"
	"time"

	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// rateItem is the counter of one key in one fixed window. The window start
// is the last segment of the key, and digits only, so no key can collide
// with another key's window whatever characters it holds.
type rateItem struct {
	N int `dynamo:"n"`
}

const rateSK = "RL"

func rateKey(l ovrlrd.RateLimit, now time.Time) string {
	return "RL#" + l.Key + "#" + strconv.FormatInt(l.Start(now), 10)
}

var errInvalidLimit = ovrlrd.Errorf(ovrlrd.EINVALID, "A rate limit needs a key, a limit and a window of at least a second.")

// countRate counts one request against l, and its condition refuses it
// once the window holds l.N: alone it is Hit, in a transaction it costs no
// round trip of its own.
func (s *Store) countRate(l ovrlrd.RateLimit, now time.Time) *dynamo.Update {
	return s.table.Update(attrPK, rateKey(l, now)).Range(attrSK, rateSK).
		Add("n", 1).
		Set(attrTTL, l.Reset(now).Unix()).
		If("attribute_not_exists('n') OR 'n' < ?", l.N)
}

// Hit counts one request against l in the current window. It is one
// conditional UpdateItem, so it is exact across instances: of any number
// of concurrent calls, exactly l.N are allowed per window.
func (s *Store) Hit(ctx context.Context, l ovrlrd.RateLimit) (ovrlrd.RateDecision, error) {
	if !l.Valid() {
		return ovrlrd.RateDecision{}, errInvalidLimit
	}
	now := s.now()
	var it rateItem
	err := s.countRate(l, now).OnlyUpdatedValue(ctx, &it)
	if dynamo.IsCondCheckFailed(err) {
		return l.Decide(now, false, l.N), nil
	}
	if err != nil {
		return ovrlrd.RateDecision{}, dbError("rate limit", err)
	}
	return l.Decide(now, true, it.N), nil
}

// Counted is the decision for a request counted against l inside another
// write, from the window's count read now. The read runs alongside that
// write, so it may or may not include it: Remaining can be one too many.
func (s *Store) Counted(ctx context.Context, l ovrlrd.RateLimit) (ovrlrd.RateDecision, error) {
	if !l.Valid() {
		return ovrlrd.RateDecision{}, errInvalidLimit
	}
	now := s.now()
	var it rateItem
	if err := s.get(ctx, "rate count", rateKey(l, now), rateSK, &it, nil); err != nil {
		return ovrlrd.RateDecision{}, err
	}
	return l.Decide(now, true, it.N), nil
}

// gate checks limits and returns what a counted write checks first, for
// add to put in its transaction: each of limits (a zero one counts
// nothing), the budget of the user's day when budgetUSD is positive, and
// that the account is open. failed answers their failed conditions, in the
// same order. A limit that is set but cannot count anything is refused.
func (s *Store) gate(userID string, budgetUSD float64, limits []ovrlrd.RateLimit) (add func(*dynamo.WriteTx), failed []error, err error) {
	var counted []ovrlrd.RateLimit
	for _, l := range limits {
		switch {
		case l == (ovrlrd.RateLimit{}):
		case !l.Valid():
			return nil, nil, errInvalidLimit
		default:
			counted = append(counted, l)
			failed = append(failed, ovrlrd.ErrRateLimited)
		}
	}
	if budgetUSD > 0 {
		failed = append(failed, ovrlrd.BudgetSpent(budgetUSD))
	}
	return func(tx *dynamo.WriteTx) {
		now := s.now()
		for _, l := range counted {
			tx.Update(s.countRate(l, now))
		}
		if budgetUSD > 0 {
			tx.Check(s.table.Check(attrPK, userPK(userID)).Range(attrSK, usageSK(now)).
				If("attribute_not_exists('costUsd') OR 'costUsd' < ?", budgetUSD))
		}
		tx.Check(s.accountOpen(userID))
	}, append(failed, errAccountDeleted), nil
}
