package store

import (
	"context"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

const (
	// convPrefix starts both the conversation's key under its owner (SK
	// CONV#<id>) and its own partition (PK CONV#<id>: messages, run lease,
	// turn outcomes).
	convPrefix = "CONV#"
	gonePrefix = "GONE#"
	// goneRetention is how long a deleted conversation's tombstone lets its
	// owner's retry finish the delete: long enough for an app that was
	// offline to come back to it.
	goneRetention = 7 * 24 * time.Hour
)

// The conversation item lives under its owner, so a lookup by another
// user's id finds nothing; GSI1 lists an owner's conversations by
// updatedAt, the id breaking ties.
func convsGSIPK(userID string) string      { return "CONVS#" + userID }
func convGSISK(at int64, id string) string { return sortableMillis(at) + "#" + id }

// convItem is a conversation, PK USER#<uid>, SK CONV#<id>.
type convItem struct {
	itemKey
	GSI1PK          string  `dynamo:"GSI1PK"`
	GSI1SK          string  `dynamo:"GSI1SK"`
	ID              string  `dynamo:"id"`
	UserID          string  `dynamo:"userId"`
	ClaudeSessionID *string `dynamo:"claudeSessionId,omitempty"`
	Title           *string `dynamo:"title,omitempty"`
	Workspace       *string `dynamo:"workspace,omitempty"`
	ProjectID       string  `dynamo:"projectId,omitempty"`
	Branch          string  `dynamo:"branch,omitempty"`
	WorkDir         string  `dynamo:"workDir,omitempty"`
	Base            string  `dynamo:"base,omitempty"`
	// ImportWorkspace is the version an import on a project saved: while
	// the conversation's folders are still that one, no turn has worked
	// in a checkout of the project.
	ImportWorkspace string  `dynamo:"importWorkspace,omitempty"`
	LastTurn        string  `dynamo:"lastTurn,omitempty"`
	CreatedAt       int64   `dynamo:"createdAt"`
	UpdatedAt       int64   `dynamo:"updatedAt"`
	TurnCount       int     `dynamo:"turnCount,omitempty"`
	CostUSD         float64 `dynamo:"costUsd,omitempty"`
	InputTokens     int64   `dynamo:"inputTokens,omitempty"`
	OutputTokens    int64   `dynamo:"outputTokens,omitempty"`
}

func newConvItem(userID, id string, at int64) convItem {
	return convItem{
		itemKey: itemKey{userPK(userID), convPrefix + id},
		GSI1PK:  convsGSIPK(userID), GSI1SK: convGSISK(at, id),
		ID: id, UserID: userID, CreatedAt: at, UpdatedAt: at,
	}
}

func (it convItem) conversation() ovrlrd.Conversation {
	return ovrlrd.Conversation{
		ID: it.ID, UserID: it.UserID, ClaudeSessionID: it.ClaudeSessionID, Title: it.Title, Workspace: aws.ToString(it.Workspace),
		CreatedAt: ovrlrd.Timestamp(timeOf(it.CreatedAt)), UpdatedAt: ovrlrd.Timestamp(timeOf(it.UpdatedAt)),
		TurnCount: it.TurnCount, CostUSD: it.CostUSD, InputTokens: it.InputTokens, OutputTokens: it.OutputTokens,
		ProjectID: it.ProjectID, Branch: it.Branch, WorkDir: it.WorkDir, Base: it.Base,
		Checkout: it.ProjectID != "" && it.ImportWorkspace != "" && aws.ToString(it.Workspace) == it.ImportWorkspace,
		LastTurn: it.LastTurn,
	}
}

// errConvNotFound is the one answer for a missing, foreign or malformed id:
// the app shows it verbatim and must not learn which case it was.
var errConvNotFound = ovrlrd.Errorf(ovrlrd.ENOTFOUND, "Conversation not found")

// Conversation returns convID if userID owns it. Missing, foreign and
// malformed ids are all ENOTFOUND.
func (s *Store) Conversation(ctx context.Context, userID, convID string) (ovrlrd.Conversation, error) {
	if !isID(convID) {
		return ovrlrd.Conversation{}, errConvNotFound
	}
	var it convItem
	if err := s.get(ctx, "get conversation", userPK(userID), convPrefix+convID, &it, errConvNotFound); err != nil {
		return ovrlrd.Conversation{}, err
	}
	return it.conversation(), nil
}

// ListConversations returns userID's conversations, most recently updated
// first, in one Query. nextCursor is empty on the last page.
func (s *Store) ListConversations(ctx context.Context, userID string, page ovrlrd.Page) ([]ovrlrd.Conversation, string, error) {
	q := s.table.Get(attrGSIPK, convsGSIPK(userID)).Index(indexGSI1).Order(dynamo.Descending)
	// The cursor holds the GSI key of the page's last item and the table
	// key DynamoDB needs to resume an index query.
	return listPage(ctx, s, q, "convs:"+userID, page, func(c pageCursor) map[string]string {
		if !strings.HasPrefix(c.S, convPrefix) || c.K == "" {
			return nil
		}
		return map[string]string{attrGSIPK: convsGSIPK(userID), attrGSISK: c.K, attrPK: userPK(userID), attrSK: c.S}
	}, func(it convItem) pageCursor { return pageCursor{K: it.GSI1SK, S: it.SK} }, convItem.conversation)
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
		return errConvNotFound
	}
	del := s.table.Delete(attrPK, userPK(userID)).Range(attrSK, convPrefix+convID).If("attribute_exists($)", attrPK)
	stone := s.table.Put(tombstone{
		itemKey:   itemKey{userPK(userID), gonePrefix + convID},
		DeletedAt: s.nowMillis(), TTL: s.now().Add(goneRetention).Unix(),
	})
	// Retried while an append or a turn's save races on the conversation.
	err := s.runTx(ctx, "delete conversation", func(error) (*dynamo.WriteTx, error) {
		return s.db.WriteTx().Delete(del).Put(stone), nil
	}, errConvNotFound)
	if ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
		// Gone: the caller may still hold its unexpired tombstone. It is
		// looked up under the caller's own partition, so another user's id
		// never matches.
		var it tombstone
		err = s.get(ctx, "get conversation tombstone", userPK(userID), gonePrefix+convID, &it, errConvNotFound)
		// The TTL sweeper deletes late; an expired tombstone is already gone.
		if err == nil && it.TTL <= s.now().Unix() {
			err = errConvNotFound
		}
	}
	if err != nil {
		return err
	}
	return s.purge(ctx, convPrefix+convID, "")
}
