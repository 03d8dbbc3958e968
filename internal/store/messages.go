package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

const (
	msgPrefix = "MSG#"
	// MaxContentBytes keeps a message well inside DynamoDB's 400 KB item
	// limit, so an oversized one is a clear error and not a failed write.
	MaxContentBytes = 300 << 10
)

// msgSK sorts by time, then by id, so the order is total and a cursor on it
// never skips or repeats messages that share a millisecond.
func msgSK(at int64, id string) string { return msgPrefix + sortableMillis(at) + "#" + id }

// msgItem is a message, PK CONV#<convId>, SK MSG#<ms>#<id>: all of a
// conversation's messages share its partition, so one Query pages them and
// deleting the conversation can sweep them.
type msgItem struct {
	PK             string      `dynamo:"PK"`
	SK             string      `dynamo:"SK"`
	ID             string      `dynamo:"id"`
	ConversationID string      `dynamo:"conversationId"`
	UserID         string      `dynamo:"userId"`
	Role           ovrlrd.Role `dynamo:"role"`
	Content        string      `dynamo:"content"`
	CreatedAt      int64       `dynamo:"createdAt"`
}

func newMsgItem(userID, convID, id string, role ovrlrd.Role, content string, at int64) msgItem {
	m := msgItem{PK: convPrefix + convID, ID: id, ConversationID: convID, UserID: userID, Role: role, Content: content}
	m.setTime(at)
	return m
}

func (m *msgItem) setTime(at int64) { m.CreatedAt, m.SK = at, msgSK(at, m.ID) }

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
	case len(content) > MaxContentBytes:
		return ovrlrd.Errorf(ovrlrd.ETOOLARGE, "The message is too long.")
	}
	return nil
}

// AppendMessage adds a message to convID and moves the conversation's
// updatedAt to the message's time, in one transaction that requires the
// conversation to exist and the account not to be being deleted: no message
// outlives a deleted conversation or account.
func (s *Store) AppendMessage(ctx context.Context, userID, convID string, role ovrlrd.Role, content string) (ovrlrd.Message, error) {
	if err := checkMessage(role, content); err != nil {
		return ovrlrd.Message{}, err
	}
	m := newMsgItem(userID, convID, newID(), role, content, 0)
	open := txItem{write: s.accountOpen(userID), onFail: errAccountDeleted()}
	if _, err := s.touch(ctx, userID, convID, change{}, []*msgItem{&m}, open); err != nil {
		return ovrlrd.Message{}, err
	}
	return m.message(), nil
}

// msgCursor is the sort key of the oldest message of the page before.
type msgCursor struct {
	SK string `json:"k"`
}

// Messages returns one page of convID's messages in one Query: the newest
// page.Limit older than the cursor, oldest first, and the cursor to the page
// before it ("" when there is none). The caller has checked ownership.
func (s *Store) Messages(ctx context.Context, convID string, page ovrlrd.Page) ([]ovrlrd.Message, string, error) {
	if !isID(convID) {
		return nil, "", errConvNotFound()
	}
	if err := checkPage(page); err != nil {
		return nil, "", err
	}
	scope := "msgs:" + convID
	q := s.table.Get(attrPK, convPrefix+convID).Range(attrSK, dynamo.BeginsWith, msgPrefix).
		Order(dynamo.Descending).Consistent(true).SearchLimit(page.Limit + 1)
	if page.Cursor != "" {
		var c msgCursor
		if err := s.cursors.Decode(scope, page.Cursor, &c); err != nil {
			return nil, "", err
		}
		if !strings.HasPrefix(c.SK, msgPrefix) {
			return nil, "", ovrlrd.Errorf(ovrlrd.EINVALID, "Invalid cursor.")
		}
		q.StartFrom(dynamo.PagingKey{
			attrPK: &types.AttributeValueMemberS{Value: convPrefix + convID},
			attrSK: &types.AttributeValueMemberS{Value: c.SK},
		})
	}
	var items []msgItem
	// A page stops at DynamoDB's 1 MB too (a few long answers): then the
	// rest is on the next page, not lost from the list.
	lek, err := q.AllWithLastEvaluatedKey(ctx, &items)
	if err != nil {
		return nil, "", dbError("list messages", err)
	}
	next := ""
	if len(items) > page.Limit {
		items = items[:page.Limit]
		next = s.cursors.Encode(scope, msgCursor{SK: items[len(items)-1].SK})
	} else if len(lek) > 0 && len(items) > 0 {
		next = s.cursors.Encode(scope, msgCursor{SK: items[len(items)-1].SK})
	}
	slices.Reverse(items)
	msgs := make([]ovrlrd.Message, 0, len(items))
	for _, it := range items {
		msgs = append(msgs, it.message())
	}
	return msgs, next, nil
}

// txItem is an item written in the same transaction as a touch, and the
// error to answer when its own condition fails.
type txItem struct {
	write  types.TransactWriteItem
	onFail error
}

// touch moves convID's updatedAt (and GSI1SK) to now, setting the attributes
// in ch and writing msgs and extra in the same
// transaction. Messages get consecutive milliseconds, so their order is the
// order given; updatedAt becomes the last one's time. The write requires
// updatedAt <= the new time, so the time never goes backwards; when a
// concurrent writer got further, the next attempt uses the stored time
// instead, so no write is lost. It returns the time written.
func (s *Store) touch(ctx context.Context, userID, convID string, ch change, msgs []*msgItem, extra ...txItem) (int64, error) {
	if !isID(convID) {
		return 0, errConvNotFound()
	}
	var floor int64
	for attempt := 0; ; attempt++ {
		start := max(s.nowMillis(), floor)
		at := start + int64(max(len(msgs)-1, 0))
		upd := convTouch(s.table.Name(), userID, convID, at, ch)
		for i, m := range msgs {
			m.setTime(start + int64(i))
		}
		err := s.writeTx(ctx, msgs, upd, extra)
		reasons := cancelReasons(err)
		for i, x := range extra {
			if reasonCode(reasons, len(msgs)+1+i) == reasonCondition {
				return 0, x.onFail
			}
		}
		// The conversation's own condition failed: it is gone, or a
		// concurrent writer moved its time past ours.
		var old map[string]types.AttributeValue
		failed := reasonCode(reasons, len(msgs)) == reasonCondition
		if failed {
			old = reasons[len(msgs)].Item
		}
		switch {
		case err == nil:
			return at, nil
		case failed && len(old) == 0:
			return 0, errConvNotFound()
		case failed:
			var cur convItem
			if uerr := dynamo.UnmarshalItem(old, &cur); uerr != nil || cur.UpdatedAt <= at {
				// The condition failed for a reason other than time.
				return 0, dbError("touch conversation", errors.Join(err, uerr))
			}
			floor = cur.UpdatedAt
		case !retryable(reasons):
			return 0, dbError("touch conversation", err)
		}
		if attempt+1 == txAttempts {
			return 0, ovrlrd.Wrap(ovrlrd.EUNAVAILABLE, "The conversation is busy. Try again.", err)
		}
		if err := pause(ctx, attempt); err != nil {
			return 0, dbError("touch conversation", err)
		}
	}
}

// writeTx writes msgs, applies upd to their conversation and writes extra,
// atomically, in that order (cancellation reasons are read by position).
// Raw SDK input because guregu cannot ask for the failed item's old values,
// which is how a missing conversation is told from a newer one.
func (s *Store) writeTx(ctx context.Context, msgs []*msgItem, upd *types.Update, extra []txItem) error {
	items := make([]types.TransactWriteItem, 0, len(msgs)+1+len(extra))
	for _, m := range msgs {
		item, err := dynamo.MarshalItem(m)
		if err != nil {
			return err
		}
		items = append(items, types.TransactWriteItem{Put: &types.Put{
			TableName: upd.TableName, Item: item,
			ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
			ExpressionAttributeNames: map[string]string{"#pk": attrPK},
		}})
	}
	items = append(items, types.TransactWriteItem{Update: upd})
	for _, x := range extra {
		items = append(items, x.write)
	}
	_, err := s.db.Client().TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: items,
		// Each attempt has its own token: the SDK's resend of one attempt
		// is then idempotent instead of failing on the message it wrote.
		ClientRequestToken: aws.String(newID()),
	})
	return err
}

// change is what touch does to a conversation besides moving updatedAt:
// string attributes to set (nil removes one) and numbers to add to.
type change struct {
	set map[string]*string
	add map[string]float64
}

// convTouch builds the conditional update behind touch.
func convTouch(table, userID, convID string, at int64, ch change) *types.Update {
	names := map[string]string{"#pk": attrPK, "#u": "updatedAt", "#g": attrGSISK}
	values := map[string]types.AttributeValue{
		":t": &types.AttributeValueMemberN{Value: strconv.FormatInt(at, 10)},
		":g": &types.AttributeValueMemberS{Value: convGSISK(at, convID)},
	}
	sets, removes, adds := []string{"#u = :t", "#g = :g"}, []string(nil), []string(nil)
	i := 0
	for _, name := range slices.Sorted(maps.Keys(ch.set)) {
		v := ch.set[name]
		n := fmt.Sprintf("#a%d", i)
		names[n] = name
		if v == nil {
			removes = append(removes, n)
		} else {
			values[":a"+strconv.Itoa(i)] = &types.AttributeValueMemberS{Value: *v}
			sets = append(sets, fmt.Sprintf("%s = :a%d", n, i))
		}
		i++
	}
	for _, name := range slices.Sorted(maps.Keys(ch.add)) {
		n := fmt.Sprintf("#a%d", i)
		names[n] = name
		values[":a"+strconv.Itoa(i)] = &types.AttributeValueMemberN{Value: strconv.FormatFloat(ch.add[name], 'f', -1, 64)}
		adds = append(adds, fmt.Sprintf("%s :a%d", n, i))
		i++
	}
	expr := "SET " + strings.Join(sets, ", ")
	if len(removes) > 0 {
		expr += " REMOVE " + strings.Join(removes, ", ")
	}
	if len(adds) > 0 {
		expr += " ADD " + strings.Join(adds, ", ")
	}
	return &types.Update{
		TableName: aws.String(table),
		Key: map[string]types.AttributeValue{
			attrPK: &types.AttributeValueMemberS{Value: userPK(userID)},
			attrSK: &types.AttributeValueMemberS{Value: convSK(convID)},
		},
		UpdateExpression:                    aws.String(expr),
		ConditionExpression:                 aws.String("attribute_exists(#pk) AND #u <= :t"),
		ExpressionAttributeNames:            names,
		ExpressionAttributeValues:           values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
}
