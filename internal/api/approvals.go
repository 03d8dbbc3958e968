package api

import (
	"net/http"
	"unicode/utf8"

	"github.com/ovrlrd/cloud/internal/audit"
	"github.com/ovrlrd/cloud/internal/auth"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// MaxApprovalMessage is the longest message a user may give with an
// answer to a live approval, in characters.
const MaxApprovalMessage = 2000

// approvalBody is POST /chat/{id}/approvals/{requestId}: the user's answer
// to a tool a running turn waits on, with a word for Claude if they like.
type approvalBody struct {
	Decision *ovrlrd.Decision `json:"decision"`
	Message  string           `json:"message"`
}

func (b *approvalBody) Validate() error {
	switch {
	case b.Decision == nil:
		return ovrlrd.Errorf(ovrlrd.EINVALID, `Field "decision" is required.`)
	case !b.Decision.Valid():
		return ovrlrd.Errorf(ovrlrd.EINVALID, `Field "decision" must be "allow" or "deny".`)
	case !utf8.ValidString(b.Message):
		return ovrlrd.Errorf(ovrlrd.EINVALID, `Field "message" must be valid UTF-8.`)
	case utf8.RuneCountInString(b.Message) > MaxApprovalMessage:
		return ovrlrd.Errorf(ovrlrd.EINVALID, `Field "message" must be at most %d characters.`, MaxApprovalMessage)
	}
	return nil
}

type approvalResponse struct {
	RequestID string          `json:"requestId"`
	Decision  ovrlrd.Decision `json:"decision"`
}

// answerApproval is POST /chat/{id}/approvals/{requestId}. The request is
// read through its conversation's partition and must be the caller's: a
// missing or foreign conversation or request, and an id that could be
// neither, are the same 404. The answer is taken once: the same one again
// is answered as the first was (a retry), another is 409, and one after
// the turn stopped waiting 410. Only the answer that was recorded goes to
// the audit trail, without the user's message or the tool's input.
func (s *server) answerApproval(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	var body approvalBody
	if s.failed(w, r, Decode(r, &body)) {
		return
	}
	a, recorded, err := s.Conversations.DecideApproval(r.Context(), p.UserID, r.PathValue("id"), r.PathValue("requestId"), *body.Decision, body.Message)
	if s.failed(w, r, err) {
		return
	}
	if recorded {
		s.Auth.Audit.Record(r.Context(), audit.ApprovalAnswered, p.UserID, client(r), audit.ApprovalReason(a))
	}
	WriteJSON(w, http.StatusOK, approvalResponse{RequestID: a.ID, Decision: a.Decision})
}
