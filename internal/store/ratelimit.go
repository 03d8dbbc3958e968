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

// Hit counts one request against key's limit in the current fixed window.
// It is one conditional UpdateItem, so it is exact across instances: of any
// number of concurrent calls, exactly limit are allowed per window.
func (s *Store) Hit(ctx context.Context, key string, limit int, window time.Duration) (ovrlrd.RateDecision, error) {
	secs := int64(window / time.Second)
	if key == "" || limit < 1 || secs < 1 {
		return ovrlrd.RateDecision{}, ovrlrd.Errorf(ovrlrd.EINVALID, "A rate limit needs a key, a limit and a window of at least a second.")
	}
	// Aligning windows on the epoch (not on first use) needs no read.
	start := s.now().Unix() / secs * secs
	reset := time.Unix(start+secs, 0).UTC()
	d := ovrlrd.RateDecision{Limit: limit, Reset: reset}

	var it rateItem
	err := s.table.Update(attrPK, "RL#"+key+"#"+strconv.FormatInt(start, 10)).Range(attrSK, "RL").
		Add("n", 1).
		Set(attrTTL, reset.Unix()).
		If("attribute_not_exists('n') OR 'n' < ?", limit).
		OnlyUpdatedValue(ctx, &it)
	if dynamo.IsCondCheckFailed(err) {
		return d, nil
	}
	if err != nil {
		return ovrlrd.RateDecision{}, dbError("rate limit", err)
	}
	d.Allowed = true
	d.Remaining = max(limit-it.N, 0)
	return d, nil
}
