package store

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

const (
	// maxTurnMessages keeps a turn's transaction within DynamoDB's 100
	// items: its messages (a notice included), the conversation, the lease,
	// the outcome and the user's day.
	maxTurnMessages  = 96
	outcomeRetention = 24 * time.Hour
	// maxOutcomeText is the most of a turn's text its outcome record keeps.
	maxOutcomeText = 64 << 10
)

var errTurnRunning = ovrlrd.Errorf(ovrlrd.ECONFLICT, "A turn is already running for this conversation.")

// savedMargin is how far apart the clocks of two instances may be. A turn
// that finished this recently is not trusted to be in a read made beside
// the transaction that starts the next (StartTurn); Lambda's clocks agree
// far better than this, and the lease's own expiry relies on them too.
const savedMargin = time.Second

// StartTurn begins a turn in one transaction: it counts the turn against
// the user's limit, checks the day's budget and that the account is open,
// writes the opening message, takes the lease and, for a new conversation,
// creates it; for an existing one, the same transaction proves that the
// user owns it. Whatever fails, nothing is written.
//
// An existing conversation's session id, folders and title are read beside
// that transaction, not after it, and StartTurn does not wait for the read:
// TurnStarted.Conversation does, so the caller waits for one round trip and
// what needs the conversation for no more than that.
// The read could miss a turn that finished in between; so the transaction
// requires the conversation's last save (savedAt) to predate the read by
// savedMargin. A conversation saved more recently than that is started
// again, on the state the failed transaction returned, now required to be
// unchanged (its turnCount): a second round trip, only for a message sent
// within a second of the answer before it.
func (s *Store) StartTurn(ctx context.Context, t ovrlrd.TurnStart) (ovrlrd.TurnStarted, error) {
	if err := checkMessage(t.Message.Role, t.Message.Content); err != nil {
		return ovrlrd.TurnStarted{}, err
	}
	if t.Holder == "" || t.Lease <= 0 {
		return ovrlrd.TurnStarted{}, ovrlrd.Errorf(ovrlrd.EINVALID, "A turn needs a holder and a lease.")
	}
	add, failed, err := s.gate(t.UserID, t.BudgetUSD, []ovrlrd.RateLimit{t.Limit})
	if err != nil {
		return ovrlrd.TurnStarted{}, err
	}
	if t.ConversationID == "" {
		return s.startNewTurn(ctx, t, add, failed)
	}
	// A malformed conversation id is not found: touch refuses it unread.
	readAt := s.nowMillis()
	var (
		found    ovrlrd.Conversation
		foundErr error
		read     = make(chan struct{}) // closed once found and foundErr are set
	)
	go func() {
		defer close(read)
		found, foundErr = s.Conversation(ctx, t.UserID, t.ConversationID)
	}()
	var seen *convItem // the conversation as a refused start found it
	m := newMsgItem(t.UserID, t.ConversationID, t.Message.Role, t.Message.Content, 0)
	err = s.touch(ctx, t.UserID, t.ConversationID, []*msgItem{m}, func(u *dynamo.Update) {
		// The turn before is kept, for UndoStartTurn to put back.
		u.SetExpr("'prevTurn' = if_not_exists('lastTurn', ?)", "").Set("lastTurn", t.Holder)
		switch {
		case seen == nil:
			u.If("attribute_not_exists('savedAt') OR 'savedAt' < ?", readAt-savedMargin.Milliseconds())
		case seen.TurnCount == 0:
			u.If("attribute_not_exists('turnCount')")
		default:
			u.If("'turnCount' = ?", seen.TurnCount)
		}
	}, func(cur convItem) bool {
		seen = &cur
		return true
	}, func(tx *dynamo.WriteTx) {
		add(tx)
		// The lease is taken when none exists or the current one has
		// expired, so a holder that died never locks a conversation for
		// longer than one lease.
		run := s.newRun(t.ConversationID, t.Holder, t.Lease)
		tx.Put(s.table.Put(run).If("attribute_not_exists($) OR 'expiresAt' < ?", attrPK, run.StartedAt))
	}, append(failed, errTurnRunning)...)
	if errors.Is(err, errTurnRunning) {
		// Another user's conversation is not found, whether or not a turn
		// of its own runs: the read of the user's own key tells.
		if <-read; ovrlrd.IsCode(foundErr, ovrlrd.ENOTFOUND) {
			err = foundErr
		}
	}
	if err != nil {
		return ovrlrd.TurnStarted{}, err
	}
	started := ovrlrd.TurnStarted{ConversationID: t.ConversationID, Opening: m.message()}
	if seen != nil {
		started.Conversation = known(seen.conversation())
		return started, nil
	}
	started.Conversation = func(ctx context.Context) (ovrlrd.Conversation, error) {
		select {
		case <-read:
		case <-ctx.Done():
			return ovrlrd.Conversation{}, dbError("get conversation", ctx.Err())
		}
		if foundErr == nil {
			return found, nil
		}
		// The turn holds its lease, so a read from here on is current.
		return s.Conversation(ctx, t.UserID, t.ConversationID)
	}
	return started, nil
}

func (s *Store) startNewTurn(ctx context.Context, t ovrlrd.TurnStart, add func(*dynamo.WriteTx), failed []error) (ovrlrd.TurnStarted, error) {
	if !isID(t.UserID) {
		return ovrlrd.TurnStarted{}, ovrlrd.Errorf(ovrlrd.EINVALID, "The user id is invalid.")
	}
	at := s.nowMillis()
	conv := newConvItem(t.UserID, uuid.NewString(), at)
	conv.LastTurn = t.Holder
	m := newMsgItem(t.UserID, conv.ID, t.Message.Role, t.Message.Content, at)
	run := s.newRun(conv.ID, t.Holder, t.Lease)
	err := s.runTx(ctx, "start turn", func(error) (*dynamo.WriteTx, error) {
		tx := s.db.WriteTx()
		add(tx)
		return tx.
			Put(s.table.Put(conv).If("attribute_not_exists($)", attrPK)).
			Put(s.table.Put(m).If("attribute_not_exists($)", attrPK)).
			Put(s.table.Put(run).If("attribute_not_exists($)", attrPK)), nil
	}, failed...)
	if err != nil {
		return ovrlrd.TurnStarted{}, err
	}
	return ovrlrd.TurnStarted{ConversationID: conv.ID, Opening: m.message(), Conversation: known(conv.conversation())}, nil
}

// known is TurnStarted.Conversation for a conversation already in hand.
func known(c ovrlrd.Conversation) func(context.Context) (ovrlrd.Conversation, error) {
	return func(context.Context) (ovrlrd.Conversation, error) { return c, nil }
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
	pk := convPrefix + t.ConversationID
	return s.runTx(ctx, "undo turn start", func(error) (*dynamo.WriteTx, error) {
		tx := s.db.WriteTx().Delete(s.table.Delete(attrPK, pk).Range(attrSK, runSK).
			If("'holder' = ? AND attribute_not_exists($)", t.Holder, attrClaimed))
		sk, err := s.messageSK(ctx, t.ConversationID, t.OpeningID)
		switch {
		case err == nil:
			tx.Delete(s.table.Delete(attrPK, pk).Range(attrSK, sk))
		case !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND):
			return nil, err
		}
		if t.New {
			tx.Delete(s.table.Delete(attrPK, userPK(t.UserID)).Range(attrSK, convPrefix+t.ConversationID))
		} else {
			// A client that reattaches without an id follows the turn
			// before again.
			tx.Update(s.table.Update(attrPK, userPK(t.UserID)).Range(attrSK, convPrefix+t.ConversationID).
				SetExpr("'lastTurn' = if_not_exists('prevTurn', ?)", "").If("'lastTurn' = ?", t.Holder))
		}
		return tx, nil
	}, errTurnClaimed)
}

// messageSK finds the sort key of message id, which holds its time. The
// newest messages are read first: the one a turn just opened with is among
// them.
func (s *Store) messageSK(ctx context.Context, convID, id string) (string, error) {
	var found []msgItem
	if id != "" {
		err := s.table.Get(attrPK, convPrefix+convID).Range(attrSK, dynamo.BeginsWith, msgPrefix).
			Filter("'id' = ?", id).Order(dynamo.Descending).Consistent(true).
			Project(attrSK).Limit(1).RequestLimit(2).All(ctx, &found)
		if err != nil && !errors.Is(err, dynamo.ErrNotFound) {
			return "", dbError("find message", err)
		}
	}
	if len(found) == 0 {
		return "", ovrlrd.Errorf(ovrlrd.ENOTFOUND, "Message not found")
	}
	return found[0].SK, nil
}

type outcomeItem struct {
	itemKey
	ovrlrd.TurnOutcome
	TTL int64 `dynamo:"ttl"`
}

func outcomeSK(holder string) string { return "TURN#" + holder }

// FinishTurn stores a turn's messages, session id and title, records its
// outcome and releases the lease, in one transaction that requires the
// lease to still be the turn's: once the conversation is deleted (the lease
// goes with it), nothing of the turn is written.
func (s *Store) FinishTurn(ctx context.Context, f ovrlrd.TurnFinish) error {
	logged := s.finishLog(ctx, f.ConversationID, f.Log)
	limit := maxTurnMessages - len(logged)
	if f.Notice != "" {
		limit-- // the notice takes a message's place in the transaction
	}
	var msgs []*msgItem
	for _, text := range fitSegments(f.Segments, limit) {
		msgs = append(msgs, newMsgItem(f.UserID, f.ConversationID, ovrlrd.RoleAssistant, text, 0))
	}
	if f.Notice != "" {
		msgs = append(msgs, newMsgItem(f.UserID, f.ConversationID, ovrlrd.RoleSystem, cutUTF8(f.Notice, 4<<10), 0))
	}
	edit := func(u *dynamo.Update) {
		u.Add("turnCount", 1).Add("costUsd", f.Usage.CostUSD).
			Add("inputTokens", f.Usage.InputTokens).Add("outputTokens", f.Usage.OutputTokens)
		if f.Unleased {
			return
		}
		if f.Forget {
			u.Remove("claudeSessionId", "workspace")
		}
		if f.SessionID != "" && !f.Forget {
			u.Set("claudeSessionId", f.SessionID)
		}
		if f.Workspace != "" && !f.Forget {
			u.Set("workspace", f.Workspace)
		}
		if f.Title != "" {
			u.Set("title", f.Title)
		}
		u.Set("savedAt", s.nowMillis()) // see StartTurn
	}
	// The outcome only serves a buffered caller's answer; the messages
	// hold the full text. Cut, it can never push the item past DynamoDB's
	// 400 KB, nor the transaction past its 4 MB.
	f.Outcome.Text = cutUTF8(f.Outcome.Text, maxOutcomeText)
	f.Outcome.Error = cutUTF8(f.Outcome.Error, 4<<10)
	outcome := outcomeItem{
		itemKey: itemKey{convPrefix + f.ConversationID, outcomeSK(f.Holder)}, TurnOutcome: f.Outcome,
		TTL: s.now().Add(outcomeRetention).Unix(),
	}
	return s.touch(ctx, f.UserID, f.ConversationID, msgs, edit, nil, func(tx *dynamo.WriteTx) {
		tx.Put(s.table.Put(outcome)).Update(s.addUsage(f.UserID, f.Usage))
		if !f.Unleased {
			tx.Delete(s.table.Delete(attrPK, convPrefix+f.ConversationID).Range(attrSK, runSK).If("'holder' = ?", f.Holder))
		}
		// After the lease: the failures answer by position.
		for _, it := range logged {
			tx.Put(s.table.Put(it))
		}
	}, nil, nil, ovrlrd.ErrLeaseLost)
}

// maxFinishLog bounds the event log's items in a turn's transaction, which
// its messages (at most maxTurnText) share with the rest under 4 MB.
const maxFinishLog = 2

// finishLog returns the items of a turn's last events for its transaction.
// Whatever does not fit there (a log that fell far behind, a huge terminal
// event) is written first, so the terminal event still lands with the save.
// The log never costs the save: if those writes fail, the transaction goes
// without the log, and a watcher ends at the gap (its client reconnects,
// and learns the turn ended).
func (s *Store) finishLog(ctx context.Context, convID string, b ovrlrd.EventBatch) []eventItem {
	if len(b.Events) == 0 || checkBatch(convID, b) != nil {
		return nil
	}
	items := s.eventItems(convID, b)
	for len(items) > maxFinishLog {
		if err := s.table.Put(items[0]).Run(ctx); err != nil {
			return nil
		}
		items = items[1:]
	}
	return items
}

// Outcome returns a finished turn's outcome; ENOTFOUND while it runs.
func (s *Store) Outcome(ctx context.Context, convID, holder string) (ovrlrd.TurnOutcome, error) {
	var it outcomeItem
	err := s.get(ctx, "get turn outcome", convPrefix+convID, outcomeSK(holder), &it,
		ovrlrd.Errorf(ovrlrd.ENOTFOUND, "The turn has not finished."))
	return it.TurnOutcome, err
}

// usageRetention keeps a user's daily totals for a quarter.
const usageRetention = 92 * 24 * time.Hour

// A user's totals for one UTC day sit at PK USER#<uid>,
// SK USAGE#<yyyy-mm-dd>; they go with the account.
func usageSK(day time.Time) string { return "USAGE#" + day.UTC().Format(time.DateOnly) }

// addUsage adds a turn to the user's day, for a turn's transaction.
func (s *Store) addUsage(userID string, u ovrlrd.Usage) *dynamo.Update {
	now := s.now()
	return s.table.Update(attrPK, userPK(userID)).Range(attrSK, usageSK(now)).
		Add("turns", 1).Add("costUsd", u.CostUSD).Add("inputTokens", u.InputTokens).Add("outputTokens", u.OutputTokens).
		Set(attrTTL, now.Add(usageRetention).Unix())
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
		for len(s) > maxContentBytes {
			head := cutUTF8(s, maxContentBytes)
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
		// Pieces of one answer, past what fits: a blank line between each
		// keeps them apart, as separate messages did.
		tail := strings.Join(out[maxMessages-1:], "\n\n")
		out = append(out[:maxMessages-1], tail)
		if len(tail) > maxContentBytes {
			out[len(out)-1] = cutUTF8(tail, maxContentBytes-len(truncated)) + truncated
		}
	}
	return out
}

// cutUTF8 cuts s to at most n bytes without splitting a character.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
