package store

import (
	"context"
	"fmt"
	"time"

	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// A turn's streamed events are logged, so a client that lost its stream
// can reattach and receive the rest (issue 19). Events are written in
// batches, one item each, in the conversation's partition (PK
// CONV#<conversation id>), so deleting the conversation sweeps them and a
// turn of another conversation is simply not found there. The sort key
// ends with the batch's last sequence number, zero-padded: the batches
// holding events after n are one range read, SK > EV#<turn>#<n>.
const evPrefix = "EV#"

type eventBatch struct {
	itemKey
	First  int      `dynamo:"first"`
	Events [][]byte `dynamo:"events"`
	TTL    int64    `dynamo:"ttl"`
}

func eventKey(turnID string, last int) string {
	return fmt.Sprintf("%s%s#%09d", evPrefix, turnID, last)
}

// AppendEvents logs events, the turn's from sequence number first on, in
// one write that keep bounds the life of. Writing the same batch again is
// harmless: its key and content are the same.
func (s *Store) AppendEvents(ctx context.Context, convID, turnID string, first int, events [][]byte, keep time.Duration) error {
	switch {
	case !isID(convID) || !isTurnID(turnID) || first < 1 || first+len(events)-1 > maxSeq:
		return ovrlrd.Errorf(ovrlrd.EINVALID, "An event batch needs a conversation, a turn and a first sequence number.")
	case len(events) == 0:
		return nil
	}
	it := eventBatch{
		itemKey: itemKey{convPrefix + convID, eventKey(turnID, first+len(events)-1)},
		First:   first, Events: events, TTL: s.now().Add(keep).Unix(),
	}
	return written("append events", s.table.Put(it).Run(ctx), nil)
}

// Events returns the logged events of turnID after sequence number after,
// in order. A turn that logged nothing, or none after it, is an empty
// list.
func (s *Store) Events(ctx context.Context, convID, turnID string, after int) ([]ovrlrd.LoggedEvent, error) {
	if !isID(convID) || !isTurnID(turnID) {
		return nil, nil
	}
	var batches []eventBatch
	err := s.table.Get(attrPK, convPrefix+convID).
		Range(attrSK, dynamo.Between, eventKey(turnID, max(after, 0)+1), eventKey(turnID, maxSeq)).
		Consistent(true).All(ctx, &batches)
	if err != nil {
		return nil, dbError("read events", err)
	}
	var out []ovrlrd.LoggedEvent
	for _, b := range batches {
		for i, data := range b.Events {
			if seq := b.First + i; seq > after {
				out = append(out, ovrlrd.LoggedEvent{Seq: seq, Data: data})
			}
		}
	}
	return out, nil
}

// isTurnID reports whether id may be a turn's id (its lease holder,
// rand.Text): letters and digits, so it cannot reach past its own keys.
func isTurnID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return false
		}
	}
	return true
}

// maxSeq bounds a turn's sequence numbers: nine digits of them.
const maxSeq = 999_999_999
