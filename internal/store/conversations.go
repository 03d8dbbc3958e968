package store

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

const (
	convPrefix = "CONV#"
	// MaxPageLimit is the largest page a list returns.
	MaxPageLimit = 100
	// maxTitle bounds the title kept on the conversation.
	maxTitle = 1000
)

// Keys of a conversation: the item lives under its owner, so a lookup by
// another user's id finds nothing; GSI1 lists an owner's conversations by
// updatedAt, the id breaking ties.
func convSK(id string) string              { return convPrefix + id }
func convsGSIPK(userID string) string      { return "CONVS#" + userID }
func convGSISK(at int64, id string) string { return sortableMillis(at) + "#" + id }

// goneRetention is how long a deleted conversation's tombstone lets its
// owner's retry finish the delete: long enough for an app that was offline
// to come back to it.
const goneRetention = 7 * 24 * time.Hour

const gonePrefix = "GONE#"

func goneSK(id string) string { return gonePrefix + id }

// goneItem is a deleted conversation's tombstone, PK USER#<uid>, SK
// GONE#<id>. It has no GSI1 keys, so no list ever shows it.
type goneItem struct {
	PK        string `dynamo:"PK"`
	SK        string `dynamo:"SK"`
	DeletedAt int64  `dynamo:"deletedAt"`
	TTL       int64  `dynamo:"ttl"`
}

// convItem is a conversation, PK USER#<uid>, SK CONV#<id>.
type convItem struct {
	PK              string  `dynamo:"PK"`
	SK              string  `dynamo:"SK"`
	GSI1PK          string  `dynamo:"GSI1PK"`
	GSI1SK          string  `dynamo:"GSI1SK"`
	ID              string  `dynamo:"id"`
	UserID          string  `dynamo:"userId"`
	ClaudeSessionID *string `dynamo:"claudeSessionId,omitempty"`
	Title           *string `dynamo:"title,omitempty"`
	Workspace       *string `dynamo:"workspace,omitempty"`
	CreatedAt       int64   `dynamo:"createdAt"`
	UpdatedAt       int64   `dynamo:"updatedAt"`
	TurnCount       int     `dynamo:"turnCount,omitempty"`
	CostUSD         float64 `dynamo:"costUsd,omitempty"`
	InputTokens     int64   `dynamo:"inputTokens,omitempty"`
	OutputTokens    int64   `dynamo:"outputTokens,omitempty"`
}

func newConvItem(userID, id string, at int64) convItem {
	return convItem{
		PK: userPK(userID), SK: convSK(id),
		GSI1PK: convsGSIPK(userID), GSI1SK: convGSISK(at, id),
		ID: id, UserID: userID, CreatedAt: at, UpdatedAt: at,
	}
}

func (it convItem) conversation() ovrlrd.Conversation {
	return ovrlrd.Conversation{
		ID: it.ID, UserID: it.UserID, ClaudeSessionID: it.ClaudeSessionID, Title: it.Title, Workspace: deref(it.Workspace),
		CreatedAt: ovrlrd.Timestamp(timeOf(it.CreatedAt)), UpdatedAt: ovrlrd.Timestamp(timeOf(it.UpdatedAt)),
		TurnCount: it.TurnCount, CostUSD: it.CostUSD, InputTokens: it.InputTokens, OutputTokens: it.OutputTokens,
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// errConvNotFound is the one answer for a missing, foreign or malformed id:
// the app shows it verbatim and must not learn which case it was.
func errConvNotFound() error { return ovrlrd.Errorf(ovrlrd.ENOTFOUND, "Conversation not found") }

func checkPage(p ovrlrd.Page) error {
	if p.Limit < 1 || p.Limit > MaxPageLimit {
		return ovrlrd.Errorf(ovrlrd.EINVALID, "The limit must be between 1 and %d.", MaxPageLimit)
	}
	return nil
}

// Conversation returns convID if userID owns it. Missing, foreign and
// malformed ids are all ENOTFOUND.
func (s *Store) Conversation(ctx context.Context, userID, convID string) (ovrlrd.Conversation, error) {
	if !isID(convID) {
		return ovrlrd.Conversation{}, errConvNotFound()
	}
	var it convItem
	// Consistent: the app opens a conversation right after creating it.
	err := s.table.Get(attrPK, userPK(userID)).Range(attrSK, dynamo.Equal, convSK(convID)).
		Consistent(true).One(ctx, &it)
	if errors.Is(err, dynamo.ErrNotFound) {
		return ovrlrd.Conversation{}, errConvNotFound()
	}
	if err != nil {
		return ovrlrd.Conversation{}, dbError("get conversation", err)
	}
	return it.conversation(), nil
}

// convCursor is where a conversation list page ended: the GSI key of its
// last item plus the table key DynamoDB needs to resume an index query.
type convCursor struct {
	GSISK string `json:"k"`
	SK    string `json:"s"`
}

// ListConversations returns userID's conversations, most recently updated
// first, in one Query. nextCursor is empty on the last page.
func (s *Store) ListConversations(ctx context.Context, userID string, page ovrlrd.Page) ([]ovrlrd.Conversation, string, error) {
	if err := checkPage(page); err != nil {
		return nil, "", err
	}
	scope := "convs:" + userID
	q := s.table.Get(attrGSIPK, convsGSIPK(userID)).Index(indexGSI1).Order(dynamo.Descending).
		// SearchLimit, unlike Limit, makes exactly one request; the extra
		// item only tells whether another page exists.
		SearchLimit(page.Limit + 1)
	if page.Cursor != "" {
		var c convCursor
		if err := s.cursors.Decode(scope, page.Cursor, &c); err != nil {
			return nil, "", err
		}
		if !strings.HasPrefix(c.SK, convPrefix) || c.GSISK == "" {
			return nil, "", ovrlrd.Errorf(ovrlrd.EINVALID, "Invalid cursor.")
		}
		q.StartFrom(dynamo.PagingKey{
			attrGSIPK: &types.AttributeValueMemberS{Value: convsGSIPK(userID)},
			attrGSISK: &types.AttributeValueMemberS{Value: c.GSISK},
			attrPK:    &types.AttributeValueMemberS{Value: userPK(userID)},
			attrSK:    &types.AttributeValueMemberS{Value: c.SK},
		})
	}
	var items []convItem
	if err := q.All(ctx, &items); err != nil {
		return nil, "", dbError("list conversations", err)
	}
	next := ""
	if len(items) > page.Limit {
		items = items[:page.Limit]
		last := items[len(items)-1]
		next = s.cursors.Encode(scope, convCursor{GSISK: last.GSI1SK, SK: last.SK})
	}
	convs := make([]ovrlrd.Conversation, 0, len(items))
	for _, it := range items {
		convs = append(convs, it.conversation())
	}
	return convs, next, nil
}

// DeleteConversation deletes convID and everything kept under it. The
// conversation goes first and conditionally: once it is gone nothing can be
// appended (appends require it). In the same transaction its tombstone is
// written under the owner, so that should the purge (or the caller's cleanup
// elsewhere) stop part way, the owner's retry is not told "not found" but
// purges again: a conversation that is gone but whose tombstone the caller
// holds is deleted again, successfully. Any other id is ENOTFOUND, and
// nothing of it is touched.
func (s *Store) DeleteConversation(ctx context.Context, userID, convID string) error {
	if !isID(convID) {
		return errConvNotFound()
	}
	if err := s.buryConversation(ctx, userID, convID); err != nil {
		return err
	}
	return s.purge(ctx, convPrefix+convID)
}

// buryConversation replaces userID's conversation convID by its tombstone,
// or finds the tombstone an earlier delete of the caller's left.
func (s *Store) buryConversation(ctx context.Context, userID, convID string) error {
	del := s.table.Delete(attrPK, userPK(userID)).Range(attrSK, convSK(convID)).If("attribute_exists($)", attrPK)
	stone := s.table.Put(goneItem{
		PK: userPK(userID), SK: goneSK(convID),
		DeletedAt: s.nowMillis(), TTL: ttlOf(s.now().Add(goneRetention)),
	})
	for attempt := 0; ; attempt++ {
		err := s.db.WriteTx().Delete(del).Put(stone).Idempotent(true).Run(ctx)
		reasons := cancelReasons(err)
		switch {
		case err == nil:
			return nil
		case reasonCode(reasons, 0) == reasonCondition:
			return s.ownTombstone(ctx, userID, convID)
		case retryable(reasons) && attempt+1 < txAttempts:
			// An append or a turn's save racing on the conversation item.
			if err := pause(ctx, attempt); err != nil {
				return dbError("delete conversation", err)
			}
		default:
			return dbError("delete conversation", err)
		}
	}
}

// ownTombstone is nil when userID holds an unexpired tombstone of convID,
// and ENOTFOUND otherwise: it is looked up under the caller's own partition,
// so another user's id never matches.
func (s *Store) ownTombstone(ctx context.Context, userID, convID string) error {
	var it goneItem
	err := s.table.Get(attrPK, userPK(userID)).Range(attrSK, dynamo.Equal, goneSK(convID)).
		Consistent(true).One(ctx, &it)
	if errors.Is(err, dynamo.ErrNotFound) {
		return errConvNotFound()
	}
	if err != nil {
		return dbError("get conversation tombstone", err)
	}
	// The TTL sweeper deletes late; an expired tombstone is already gone.
	if it.TTL <= s.now().Unix() {
		return errConvNotFound()
	}
	return nil
}

// purge deletes every item in partition pk: messages, and whatever else
// later lives beside them (a run lease). It follows LastEvaluatedKey rather
// than re-querying, so it ends even if something keeps writing there.
func (s *Store) purge(ctx context.Context, pk string) error {
	type key struct {
		PK string `dynamo:"PK"`
		SK string `dynamo:"SK"`
	}
	var start dynamo.PagingKey
	for {
		q := s.table.Get(attrPK, pk).Project(attrPK, attrSK).Consistent(true).SearchLimit(500)
		if start != nil {
			q.StartFrom(start)
		}
		var page []key
		lek, err := q.AllWithLastEvaluatedKey(ctx, &page)
		if err != nil {
			return dbError("list conversation items", err)
		}
		if len(page) > 0 {
			keys := make([]dynamo.Keyed, len(page))
			for i, k := range page {
				keys[i] = dynamo.Keys{k.PK, k.SK}
			}
			// Run splits into requests of 25 and resends unprocessed items
			// with backoff until they are written or ctx ends.
			if _, err := s.table.Batch(attrPK, attrSK).Write().Delete(keys...).Run(ctx); err != nil {
				return dbError("delete conversation items", err)
			}
		}
		if len(lek) == 0 {
			return nil
		}
		start = lek
	}
}
