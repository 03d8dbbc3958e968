package store

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// A turn's streamed events are logged, so a client that lost its stream
// can reattach and receive the rest. Events are written in batches, one
// item each, in the conversation's partition (PK CONV#<conversation id>),
// so deleting the conversation sweeps them and a turn of another
// conversation is simply not found there. The sort key ends with the
// batch's last sequence number, zero-padded: the batches holding events
// after n are one range read, SK > EV#<turn>#<n>.
//
// An event too large for an item (a long segment, a big tool input in a
// denial) is cut into parts, each an item keyed EV#<turn>#<seq>#<part>,
// which sorts between its neighbours' keys.
const evPrefix = "EV#"

// DefaultEventTTL is how long a turn's log is kept unless configured.
const DefaultEventTTL = 24 * time.Hour

// maxItemEvents bounds the events' bytes in one item, well inside
// DynamoDB's 400 KB with its keys and names.
const maxItemEvents = 320 << 10

// eventItem holds events First, First+1, ... as one attribute, each
// event's JSON on a line of its own: one value to encode per write, not
// one per event. An event never holds a line break (checkBatch).
type eventItem struct {
	itemKey
	First int    `dynamo:"first"`
	Data  []byte `dynamo:"data"`
	// Part and Parts are set on the parts of one large event (First).
	Part  int   `dynamo:"part,omitempty"`
	Parts int   `dynamo:"parts,omitempty"`
	TTL   int64 `dynamo:"ttl"`
}

// events are the item's events; a part is one piece of one.
func (it eventItem) events() [][]byte {
	if it.Parts > 0 {
		return [][]byte{it.Data}
	}
	return bytes.Split(it.Data, []byte{'\n'})
}

func eventKey(turnID string, last int) string {
	return fmt.Sprintf("%s%s#%09d", evPrefix, turnID, last)
}

// eventItems are b's items, at most maxItemEvents of events each.
func (s *Store) eventItems(convID string, b ovrlrd.EventBatch) []eventItem {
	ttl := s.now().Add(s.eventTTL).Unix()
	var (
		out []eventItem
		cur *eventItem
	)
	for i, data := range b.Events {
		seq := b.First + i
		if len(data) > maxItemEvents {
			cur = nil
			parts := (len(data) + maxItemEvents - 1) / maxItemEvents
			for p := range parts {
				chunk := data[p*maxItemEvents : min(len(data), (p+1)*maxItemEvents)]
				out = append(out, eventItem{
					itemKey: itemKey{convPrefix + convID, fmt.Sprintf("%s#%03d", eventKey(b.TurnID, seq), p+1)},
					First:   seq, Data: chunk, Part: p + 1, Parts: parts, TTL: ttl,
				})
			}
			continue
		}
		if cur == nil || len(cur.Data)+1+len(data) > maxItemEvents {
			out = append(out, eventItem{itemKey: itemKey{convPrefix + convID, ""}, First: seq, TTL: ttl})
			cur = &out[len(out)-1]
		} else {
			cur.Data = append(cur.Data, '\n')
		}
		cur.Data = append(cur.Data, data...)
		cur.SK = eventKey(b.TurnID, seq)
	}
	return out
}

func checkBatch(convID string, b ovrlrd.EventBatch) error {
	if !isID(convID) || !ovrlrd.IsTurnID(b.TurnID) || b.First < 1 || b.Last() > maxSeq {
		return ovrlrd.Errorf(ovrlrd.EINVALID, "An event batch needs a conversation, a turn and a first sequence number.")
	}
	for _, data := range b.Events {
		if len(data) == 0 || bytes.IndexByte(data, '\n') >= 0 {
			return ovrlrd.Errorf(ovrlrd.EINVALID, "A logged event is one line of JSON.")
		}
	}
	return nil
}

// AppendEvents logs b, in order, one write per item (most batches are one
// item). Writing the same batch again is harmless: its keys and content
// are the same, and a reader skips an event it already has.
func (s *Store) AppendEvents(ctx context.Context, convID string, b ovrlrd.EventBatch) error {
	if err := checkBatch(convID, b); err != nil || len(b.Events) == 0 {
		return err
	}
	for _, it := range s.eventItems(convID, b) {
		if err := written("append events", s.table.Put(it).Run(ctx), nil); err != nil {
			return err
		}
	}
	return nil
}

// DeleteEvents deletes turnID's log: a turn whose conversation was deleted
// while it ran may have written some after the conversation's own sweep.
func (s *Store) DeleteEvents(ctx context.Context, convID, turnID string) error {
	if !isID(convID) || !ovrlrd.IsTurnID(turnID) {
		return nil
	}
	return s.purge(ctx, convPrefix+convID, evPrefix+turnID+"#")
}

// Events returns the logged events of turnID after sequence number after,
// in order, and only as far as they run without a gap (a batch whose write
// failed is retried later, and a large event is whole or absent). A turn
// that logged nothing, or none after it, is an empty list.
func (s *Store) Events(ctx context.Context, convID, turnID string, after int) ([]ovrlrd.LoggedEvent, error) {
	if !isID(convID) || !ovrlrd.IsTurnID(turnID) || after >= maxSeq {
		return nil, nil
	}
	var items []eventItem
	err := s.table.Get(attrPK, convPrefix+convID).
		Range(attrSK, dynamo.Between, eventKey(turnID, max(after, 0)+1), eventKey(turnID, maxSeq)).
		Consistent(true).All(ctx, &items)
	if err != nil {
		return nil, dbError("read events", err)
	}
	var (
		out   []ovrlrd.LoggedEvent
		next  = max(after, 0) + 1
		large []byte // the parts of event next so far
		part  int
	)
	for _, it := range items {
		if it.Parts > 0 && it.First >= next {
			if it.First > next || it.Part != part+1 {
				return out, nil // a part, or the events before, still missing
			}
			large, part = append(large, it.Data...), part+1
			if part == it.Parts {
				out = append(out, ovrlrd.LoggedEvent{Seq: next, Data: large})
				next, large, part = next+1, nil, 0
			}
			continue
		}
		for i, data := range it.events() {
			switch seq := it.First + i; {
			case seq < next, it.Parts > 0:
			case seq > next:
				return out, nil // a gap: what follows waits for it
			default:
				out = append(out, ovrlrd.LoggedEvent{Seq: seq, Data: data})
				next++
			}
		}
	}
	return out, nil
}

// LastEvent is the sequence number of turnID's last logged event, 0 if
// none.
func (s *Store) LastEvent(ctx context.Context, convID, turnID string) (int, error) {
	if !isID(convID) || !ovrlrd.IsTurnID(turnID) {
		return 0, nil
	}
	var items []eventItem
	err := s.table.Get(attrPK, convPrefix+convID).Range(attrSK, dynamo.BeginsWith, evPrefix+turnID+"#").
		Order(dynamo.Descending).Limit(1).Consistent(true).All(ctx, &items)
	switch {
	case err != nil:
		return 0, dbError("read last event", err)
	case len(items) == 0:
		return 0, nil
	case items[0].Parts > 0 && items[0].Part < items[0].Parts:
		return items[0].First - 1, nil // a large event not yet whole
	}
	return items[0].First + len(items[0].events()) - 1, nil
}

const maxSeq = ovrlrd.MaxEventSeq
