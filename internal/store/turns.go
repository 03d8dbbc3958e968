package store

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

func errTurnRunning() error {
	return ovrlrd.Errorf(ovrlrd.ECONFLICT, "A turn is already running for this conversation.")
}

// StartTurn writes the opening message and takes the lease in one
// transaction; for a new conversation, the conversation too. The same
// transaction requires the account not to be being deleted. An existing
// conversation costs one read after it, for its session id, folders and
// title.
func (s *Store) StartTurn(ctx context.Context, t ovrlrd.TurnStart) (ovrlrd.Conversation, ovrlrd.Message, error) {
	if err := checkMessage(t.Message.Role, t.Message.Content); err != nil {
		return ovrlrd.Conversation{}, ovrlrd.Message{}, err
	}
	if t.Holder == "" || t.Lease <= 0 {
		return ovrlrd.Conversation{}, ovrlrd.Message{}, ovrlrd.Errorf(ovrlrd.EINVALID, "A turn needs a holder and a lease.")
	}
	if t.ConversationID == "" {
		return s.startNewTurn(ctx, t)
	}
	m := newMsgItem(t.UserID, t.ConversationID, newID(), t.Message.Role, t.Message.Content, 0)
	run, err := s.runPut(t.ConversationID, t.Holder, t.Lease)
	if err != nil {
		return ovrlrd.Conversation{}, ovrlrd.Message{}, err
	}
	// The conversation is read once the lease is held: from then on only
	// this turn changes its session and folders, so the turn resumes what
	// the turn before it saved, never an older state read before that one
	// released the lease.
	_, err = s.touch(ctx, t.UserID, t.ConversationID, change{}, []*msgItem{&m},
		txItem{write: s.accountOpen(t.UserID), onFail: errAccountDeleted()},
		txItem{write: run, onFail: errTurnRunning()})
	if err != nil {
		return ovrlrd.Conversation{}, ovrlrd.Message{}, err
	}
	conv, err := s.Conversation(ctx, t.UserID, t.ConversationID)
	if err != nil {
		return ovrlrd.Conversation{}, ovrlrd.Message{}, err
	}
	return conv, m.message(), nil
}

func (s *Store) startNewTurn(ctx context.Context, t ovrlrd.TurnStart) (ovrlrd.Conversation, ovrlrd.Message, error) {
	if !isID(t.UserID) {
		return ovrlrd.Conversation{}, ovrlrd.Message{}, ovrlrd.Errorf(ovrlrd.EINVALID, "The user id is invalid.")
	}
	at := s.nowMillis()
	conv := newConvItem(t.UserID, newID(), at)
	m := newMsgItem(t.UserID, conv.ID, newID(), t.Message.Role, t.Message.Content, at)
	run := s.newRun(conv.ID, t.Holder, t.Lease)
	err := s.db.WriteTx().
		Check(s.accountOpenCheck(t.UserID)).
		Put(s.table.Put(conv).If("attribute_not_exists($)", attrPK)).
		Put(s.table.Put(m).If("attribute_not_exists($)", attrPK)).
		Put(s.table.Put(run).If("attribute_not_exists($)", attrPK)).
		Idempotent(true).Run(ctx)
	if reasonCode(cancelReasons(err), 0) == reasonCondition {
		return ovrlrd.Conversation{}, ovrlrd.Message{}, errAccountDeleted()
	}
	if err != nil {
		return ovrlrd.Conversation{}, ovrlrd.Message{}, dbError("start turn", err)
	}
	return conv.conversation(), m.message(), nil
}

func (s *Store) newRun(convID, holder string, lease time.Duration) runItem {
	now := s.now()
	exp := now.Add(lease)
	return runItem{
		PK: runPK(convID), SK: runSK, Holder: holder,
		StartedAt: now.UnixMilli(), ExpiresAt: exp.UnixMilli(), TTL: ttlOf(exp.Add(runCleanupGrace)),
	}
}

// runPut takes the conversation's lease for holder, as a transaction item.
// It succeeds when no lease exists or the current one has expired, so a
// holder that died can never lock a conversation for longer than one lease.
func (s *Store) runPut(convID, holder string, lease time.Duration) (types.TransactWriteItem, error) {
	run := s.newRun(convID, holder, lease)
	item, err := dynamo.MarshalItem(run)
	if err != nil {
		return types.TransactWriteItem{}, ovrlrd.Wrap(ovrlrd.EINTERNAL, "Internal server error", err)
	}
	return types.TransactWriteItem{Put: &types.Put{
		TableName:                aws.String(s.table.Name()),
		Item:                     item,
		ConditionExpression:      aws.String("attribute_not_exists(#pk) OR #e < :now"),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK, "#e": "expiresAt"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":now": &types.AttributeValueMemberN{Value: strconv.FormatInt(run.StartedAt, 10)},
		},
	}}, nil
}

// maxTurnMessages keeps a turn's transaction within DynamoDB's 100 items:
// its messages (a notice included), the conversation, the lease, the
// outcome and the user's day.
const maxTurnMessages = 96

const outcomeRetention = 24 * time.Hour

// maxOutcomeText is the most of a turn's text its outcome record keeps.
const maxOutcomeText = 64 << 10

// cutUTF8 cuts s to at most n bytes without splitting a character.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

type outcomeItem struct {
	PK string `dynamo:"PK"`
	SK string `dynamo:"SK"`
	ovrlrd.TurnOutcome
	TTL int64 `dynamo:"ttl"`
}

func outcomeSK(holder string) string { return "TURN#" + holder }

// FinishTurn stores a turn's messages, session id and title, records its
// outcome and releases the lease, in one transaction that requires the
// lease to still be the turn's: once the conversation is deleted (the lease
// goes with it), nothing of the turn is written.
func (s *Store) FinishTurn(ctx context.Context, f ovrlrd.TurnFinish) ([]ovrlrd.Message, error) {
	set := map[string]*string{}
	add := map[string]float64{
		"turnCount": 1, "costUsd": f.Usage.CostUSD,
		"inputTokens": float64(f.Usage.InputTokens), "outputTokens": float64(f.Usage.OutputTokens),
	}
	switch {
	case f.Unleased:
	case f.Forget:
		set["claudeSessionId"], set["workspace"] = nil, nil
	default:
		if f.SessionID != "" {
			set["claudeSessionId"] = &f.SessionID
		}
		if f.Workspace != "" {
			set["workspace"] = &f.Workspace
		}
	}
	if f.Title != "" && !f.Unleased {
		if len(f.Title) > maxTitle {
			return nil, ovrlrd.Errorf(ovrlrd.EINVALID, "The title is too long.")
		}
		set["title"] = &f.Title
	}
	limit := maxTurnMessages
	if f.Notice != "" {
		limit-- // the notice takes a message's place in the transaction
	}
	segments := fitSegments(f.Segments, limit)
	msgs := make([]*msgItem, 0, len(segments)+1)
	for _, text := range segments {
		m := newMsgItem(f.UserID, f.ConversationID, newID(), ovrlrd.RoleAssistant, text, 0)
		msgs = append(msgs, &m)
	}
	if f.Notice != "" {
		m := newMsgItem(f.UserID, f.ConversationID, newID(), ovrlrd.RoleSystem, cutUTF8(f.Notice, 4<<10), 0)
		msgs = append(msgs, &m)
	}
	// The outcome only serves a buffered caller's answer; the messages
	// hold the full text. Cut, it can never push the item past DynamoDB's
	// 400 KB, nor the transaction past its 4 MB.
	f.Outcome.Text = cutUTF8(f.Outcome.Text, maxOutcomeText)
	f.Outcome.Error = cutUTF8(f.Outcome.Error, 4<<10)
	outcome, err := dynamo.MarshalItem(outcomeItem{
		PK: runPK(f.ConversationID), SK: outcomeSK(f.Holder), TurnOutcome: f.Outcome,
		TTL: ttlOf(s.now().Add(outcomeRetention)),
	})
	if err != nil {
		return nil, ovrlrd.Wrap(ovrlrd.EINTERNAL, "Internal server error", err)
	}
	extra := []txItem{
		{write: types.TransactWriteItem{Put: &types.Put{TableName: aws.String(s.table.Name()), Item: outcome}}},
		{write: s.addUsage(f.UserID, f.Usage)},
	}
	if !f.Unleased {
		extra = append(extra, txItem{write: s.releaseIfHeld(f.ConversationID, f.Holder), onFail: ovrlrd.ErrLeaseLost})
	}
	if _, err = s.touch(ctx, f.UserID, f.ConversationID, change{set: set, add: add}, msgs, extra...); err != nil {
		return nil, err
	}
	out := make([]ovrlrd.Message, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, m.message())
	}
	return out, nil
}

// releaseIfHeld deletes the lease if holder still holds it.
func (s *Store) releaseIfHeld(convID, holder string) types.TransactWriteItem {
	return types.TransactWriteItem{Delete: &types.Delete{
		TableName: aws.String(s.table.Name()),
		Key: map[string]types.AttributeValue{
			attrPK: &types.AttributeValueMemberS{Value: runPK(convID)},
			attrSK: &types.AttributeValueMemberS{Value: runSK},
		},
		ConditionExpression:       aws.String("#h = :h"),
		ExpressionAttributeNames:  map[string]string{"#h": "holder"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":h": &types.AttributeValueMemberS{Value: holder}},
	}}
}

// Outcome returns a finished turn's outcome; ENOTFOUND while it runs.
func (s *Store) Outcome(ctx context.Context, convID, holder string) (ovrlrd.TurnOutcome, error) {
	var it outcomeItem
	err := s.table.Get(attrPK, runPK(convID)).Range(attrSK, dynamo.Equal, outcomeSK(holder)).
		Consistent(true).One(ctx, &it)
	if errors.Is(err, dynamo.ErrNotFound) {
		return ovrlrd.TurnOutcome{}, ovrlrd.Errorf(ovrlrd.ENOTFOUND, "The turn has not finished.")
	}
	if err != nil {
		return ovrlrd.TurnOutcome{}, dbError("get turn outcome", err)
	}
	return it.TurnOutcome, nil
}

// maxTurnText bounds the text of a turn's messages together, so its one
// transaction stays under DynamoDB's 4 MB with room for the rest (the
// outcome, the conversation, the lease, keys and names).
const maxTurnText = 3 << 20

// truncated ends a turn's text that went past maxTurnText, so the reader
// sees that the stored answer is not the whole of it.
const truncated = "\n\n[The rest of this answer was too long to keep.]"

// fitSegments splits segments longer than one message may be, joins the
// rest into the last one past maxMessages, and cuts the whole at
// maxTurnText with a visible marker, so a turn's output always fits its one
// transaction. None of it happens in a normal turn.
func fitSegments(segments []string, maxMessages int) []string {
	var out []string
	total := 0
	for _, s := range segments {
		if total+len(s) > maxTurnText {
			s = cutUTF8(s, max(maxTurnText-total-len(truncated), 0)) + truncated
			segments = nil // nothing after this one
		}
		total += len(s)
		for len(s) > MaxContentBytes {
			head := cutUTF8(s, MaxContentBytes)
			out = append(out, head)
			s = s[len(head):]
		}
		if s != "" {
			out = append(out, s)
		}
		if segments == nil {
			break
		}
	}
	if len(out) > maxMessages {
		tail := strings.Join(out[maxMessages-1:], "\n\n")
		out = append(out[:maxMessages-1], tail)
		if len(tail) > MaxContentBytes {
			out[len(out)-1] = cutUTF8(tail, MaxContentBytes-len(truncated)) + truncated
		}
	}
	return out
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
