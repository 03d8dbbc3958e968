package store

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// A turn's requests for a live approval sit in its conversation's
// partition (SK APPROVAL#<id>), so they go with the conversation, and
// expire through the table's TTL a day after their own expiry.
const (
	approvalPrefix    = "APPROVAL#"
	approvalRetention = 24 * time.Hour
)

type approvalItem struct {
	itemKey
	UserID    string          `dynamo:"userId"`
	TurnID    string          `dynamo:"turnId"`
	ToolName  string          `dynamo:"toolName"`
	ToolInput string          `dynamo:"toolInput"`
	ExpiresAt int64           `dynamo:"expiresAt"`
	Decision  ovrlrd.Decision `dynamo:"decision,omitempty"`
	Message   string          `dynamo:"message,omitempty"`
	DecidedAt int64           `dynamo:"decidedAt,omitempty"`
	// ClosedAt is when the turn stopped waiting without an answer
	// (CloseApproval): no answer is taken after it.
	ClosedAt int64 `dynamo:"closedAt,omitempty"`
	TTL      int64 `dynamo:"ttl"`
}

func (it approvalItem) approval() ovrlrd.Approval {
	return ovrlrd.Approval{
		ID: strings.TrimPrefix(it.SK, approvalPrefix), ConversationID: strings.TrimPrefix(it.PK, convPrefix), UserID: it.UserID, TurnID: it.TurnID,
		ToolName: it.ToolName, ToolInput: json.RawMessage(it.ToolInput), ExpiresAt: ovrlrd.Timestamp(timeOf(it.ExpiresAt)),
		Decision: it.Decision, Message: it.Message,
	}
}

var errApprovalNotFound = ovrlrd.Errorf(ovrlrd.ENOTFOUND, "Approval request not found")

// CreateApproval records a request; its id is new (uuid.NewString).
func (s *Store) CreateApproval(ctx context.Context, a ovrlrd.Approval) error {
	if !isID(a.ConversationID) || !isID(a.ID) || !isID(a.UserID) || !ovrlrd.IsTurnID(a.TurnID) || a.ToolName == "" || !json.Valid(a.ToolInput) {
		return ovrlrd.Errorf(ovrlrd.EINVALID, "An approval request needs its ids, a tool and its input.")
	}
	exp := time.Time(a.ExpiresAt)
	it := approvalItem{
		itemKey: itemKey{convPrefix + a.ConversationID, approvalPrefix + a.ID}, UserID: a.UserID, TurnID: a.TurnID,
		ToolName: a.ToolName, ToolInput: string(a.ToolInput), ExpiresAt: exp.UnixMilli(), TTL: exp.Add(approvalRetention).Unix(),
	}
	return written("create approval", s.table.Put(it).If("attribute_not_exists($)", attrPK).Run(ctx),
		ovrlrd.Errorf(ovrlrd.ECONFLICT, "The approval request exists."))
}

// Approval returns a request as it stands, for the turn that waits on it.
func (s *Store) Approval(ctx context.Context, convID, id string) (ovrlrd.Approval, error) {
	if !isID(convID) || !isID(id) {
		return ovrlrd.Approval{}, errApprovalNotFound
	}
	var it approvalItem
	if err := s.get(ctx, "get approval", convPrefix+convID, approvalPrefix+id, &it, errApprovalNotFound); err != nil {
		return ovrlrd.Approval{}, err
	}
	return it.approval(), nil
}

// DecideApproval records userID's decision on request id of convID, once:
// the same decision again is accepted as it was (a retried request), another
// is ErrApprovalAnswered, an answer after the request expired or its turn
// stopped waiting (CloseApproval) ErrApprovalExpired. A request that is
// missing or not userID's is the same ENOTFOUND. recorded reports whether
// this call is the one that recorded the answer: false for the same answer
// given again, which the audit trail must not count twice.
func (s *Store) DecideApproval(ctx context.Context, userID, convID, id string, d ovrlrd.Decision, message string) (a ovrlrd.Approval, recorded bool, err error) {
	if !d.Valid() {
		return ovrlrd.Approval{}, false, ovrlrd.Errorf(ovrlrd.EINVALID, `Field "decision" must be "allow" or "deny".`)
	}
	if !isID(convID) || !isID(id) {
		return ovrlrd.Approval{}, false, errApprovalNotFound
	}
	now := s.nowMillis()
	var it approvalItem
	err = s.table.Update(attrPK, convPrefix+convID).Range(attrSK, approvalPrefix+id).
		Set("decision", d).Set("message", message).Set("decidedAt", now).
		If("attribute_exists($) AND 'userId' = ? AND attribute_not_exists('decision') AND attribute_not_exists('closedAt') AND 'expiresAt' > ?", attrPK, userID, now).
		Value(ctx, &it)
	if err == nil {
		return it.approval(), true, nil
	}
	if !dynamo.IsCondCheckFailed(err) {
		return ovrlrd.Approval{}, false, dbError("answer approval", err)
	}
	// Refused: the request as it is tells why.
	a, err = s.Approval(ctx, convID, id)
	switch {
	case err != nil:
		return ovrlrd.Approval{}, false, err
	case a.UserID != userID:
		return ovrlrd.Approval{}, false, errApprovalNotFound
	case a.Decision == d:
		return a, false, nil
	case a.Decision != "":
		return ovrlrd.Approval{}, false, ovrlrd.ErrApprovalAnswered
	}
	return ovrlrd.Approval{}, false, ovrlrd.ErrApprovalExpired
}

// CloseApproval ends the wait for an answer to request id of convID, for
// the turn that asked: once it expired, or once the turn ends. It returns
// the request as it stands: with the answer that came first, if one did;
// otherwise no answer is taken from now on (ErrApprovalExpired). The turn's
// clock and the answering one's never have to agree.
func (s *Store) CloseApproval(ctx context.Context, convID, id string) (ovrlrd.Approval, error) {
	if !isID(convID) || !isID(id) {
		return ovrlrd.Approval{}, errApprovalNotFound
	}
	var it approvalItem
	err := s.table.Update(attrPK, convPrefix+convID).Range(attrSK, approvalPrefix+id).
		Set("closedAt", s.nowMillis()).
		If("attribute_exists($) AND attribute_not_exists('decision')", attrPK).
		Value(ctx, &it)
	switch {
	case err == nil:
		return it.approval(), nil
	case dynamo.IsCondCheckFailed(err):
		return s.Approval(ctx, convID, id) // answered first, or gone with its conversation
	}
	return ovrlrd.Approval{}, dbError("close approval", err)
}

// PendingApprovals are convID's requests still waiting for an answer, for
// GET /chat/{id}: a client that lost its stream still sees them.
func (s *Store) PendingApprovals(ctx context.Context, convID string) ([]ovrlrd.Approval, error) {
	if !isID(convID) {
		return []ovrlrd.Approval{}, nil
	}
	var items []approvalItem
	err := s.table.Get(attrPK, convPrefix+convID).Range(attrSK, dynamo.BeginsWith, approvalPrefix).
		Filter("attribute_not_exists('decision') AND attribute_not_exists('closedAt') AND 'expiresAt' > ?", s.nowMillis()).
		Consistent(true).All(ctx, &items)
	if err != nil {
		return nil, dbError("list approvals", err)
	}
	out := make([]ovrlrd.Approval, 0, len(items))
	for _, it := range items {
		out = append(out, it.approval())
	}
	return out, nil
}
