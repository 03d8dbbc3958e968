package store

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

const (
	msgPrefix = "MSG#"
	// maxContentBytes keeps a message well inside DynamoDB's 400 KB item
	// limit, so an oversized one is a clear error and not a failed write.
	maxContentBytes = 300 << 10
)

// msgItem is a message, PK CONV#<convId>, SK MSG#<ms>#<id>: all of a
// conversation's messages share its partition, so one Query pages them and
// deleting the conversation can sweep them. The SK sorts by time, then by
// id, so the order is total and a cursor on it never skips or repeats
// messages that share a millisecond.
type msgItem struct {
	itemKey
	ID             string      `dynamo:"id"`
	ConversationID string      `dynamo:"conversationId"`
	UserID         string      `dynamo:"userId"`
	Role           ovrlrd.Role `dynamo:"role"`
	Content        string      `dynamo:"content"`
	CreatedAt      int64       `dynamo:"createdAt"`
}

func newMsgItem(userID, convID string, role ovrlrd.Role, content string, at int64) *msgItem {
	m := &msgItem{itemKey: itemKey{PK: convPrefix + convID}, ID: uuid.NewString(), ConversationID: convID, UserID: userID, Role: role, Content: content}
	m.setTime(at)
	return m
}

func (m *msgItem) setTime(at int64) {
	m.CreatedAt, m.SK = at, msgPrefix+sortableMillis(at)+"#"+m.ID
}

func (m msgItem) message() ovrlrd.Message {
	return ovrlrd.Message{
		ID: m.ID, ConversationID: m.ConversationID, Role: m.Role, Content: m.Content,
		CreatedAt: ovrlrd.Timestamp(timeOf(m.CreatedAt)),
	}
}

func checkMessage(role ovrlrd.Role, content string) error {
	switch {
	case !role.Valid():
		return ovrlrd.Errorf(ovrlrd.EINVALID, "The role must be user, assistant or system.")
	case content == "":
		return ovrlrd.Errorf(ovrlrd.EINVALID, "The message is empty.")
	case len(content) > maxContentBytes:
		return ovrlrd.Errorf(ovrlrd.ETOOLARGE, "The message is too long.")
	}
	return nil
}

// AppendMessage adds a message to convID and moves the conversation's
// updatedAt to the message's time, in one transaction that requires the
// conversation to exist and the account not to be being deleted: no message
// outlives a deleted conversation or account. The same transaction counts
// the request against each of limits (ErrRateLimited when one is spent).
func (s *Store) AppendMessage(ctx context.Context, userID, convID string, role ovrlrd.Role, content string, limits ...ovrlrd.RateLimit) (ovrlrd.Message, error) {
	if err := checkMessage(role, content); err != nil {
		return ovrlrd.Message{}, err
	}
	add, failed, err := s.gate(userID, 0, limits)
	if err != nil {
		return ovrlrd.Message{}, err
	}
	m := newMsgItem(userID, convID, role, content, 0)
	if err := s.touch(ctx, userID, convID, []*msgItem{m}, nil, nil, add, failed...); err != nil {
		return ovrlrd.Message{}, err
	}
	return m.message(), nil
}

// Messages returns one page of convID's messages in one Query: the newest
// page.Limit older than the cursor, oldest first, and the cursor to the page
// before it ("" when there is none). The caller has checked ownership.
func (s *Store) Messages(ctx context.Context, convID string, page ovrlrd.Page) ([]ovrlrd.Message, string, error) {
	if !isID(convID) {
		return nil, "", errConvNotFound
	}
	pk := convPrefix + convID
	q := s.table.Get(attrPK, pk).Range(attrSK, dynamo.BeginsWith, msgPrefix).Order(dynamo.Descending).Consistent(true)
	// The cursor is the sort key of the oldest message of the page before.
	msgs, next, err := listPage(ctx, s, q, "msgs:"+convID, page, func(c pageCursor) map[string]string {
		if !strings.HasPrefix(c.K, msgPrefix) {
			return nil
		}
		return map[string]string{attrPK: pk, attrSK: c.K}
	}, func(m msgItem) pageCursor { return pageCursor{K: m.SK} }, msgItem.message)
	slices.Reverse(msgs)
	return msgs, next, err
}

// touch moves convID's updatedAt (and GSI1SK) to now, applying edit to the
// same update, and in the same transaction writes what extra adds and then
// msgs. A failed condition of extra's item i answers failed[i]. Messages
// get consecutive milliseconds, so their order is the order given;
// updatedAt becomes the last one's time. The update requires updatedAt <=
// the new time, so the time never goes backwards; when a concurrent writer
// got further, the next attempt uses the stored time instead, so no write is
// lost. When a condition edit added fails, saw is given the conversation as
// it is, and the write is tried again if it reports true.
func (s *Store) touch(ctx context.Context, userID, convID string, msgs []*msgItem,
	edit func(*dynamo.Update), saw func(cur convItem) bool, extra func(*dynamo.WriteTx), failed ...error) error {
	if !isID(convID) {
		return errConvNotFound
	}
	var floor, at int64
	return s.runTx(ctx, "touch conversation", func(prev error) (*dynamo.WriteTx, error) {
		if reasons := cancelReasons(prev); conditionFailed(reasons, 0) {
			// The conversation is gone, or a concurrent writer moved its
			// time past ours: its old values tell which.
			if len(reasons[0].Item) == 0 {
				return nil, errConvNotFound
			}
			var cur convItem
			err := dynamo.UnmarshalItem(reasons[0].Item, &cur)
			switch {
			case err == nil && cur.UpdatedAt > at:
				floor = cur.UpdatedAt
			case err != nil || saw == nil || !saw(cur):
				return nil, dbError("touch conversation", errors.Join(prev, err))
			}
		}
		start := max(s.nowMillis(), floor)
		at = start + int64(max(len(msgs)-1, 0))
		upd := s.table.Update(attrPK, userPK(userID)).Range(attrSK, convPrefix+convID).
			Set("updatedAt", at).Set(attrGSISK, convGSISK(at, convID)).
			If("attribute_exists($) AND 'updatedAt' <= ?", attrPK, at)
		if edit != nil {
			edit(upd)
		}
		tx := s.db.WriteTx().Update(upd)
		extra(tx)
		for i, m := range msgs {
			m.setTime(start + int64(i))
			tx.Put(s.table.Put(m).If("attribute_not_exists($)", attrPK))
		}
		return tx, nil
	}, append([]error{errLostRace}, failed...)...)
}
