// Package audit records security events (sign-ins, refreshes, reuse, logout,
// deletion, rate limiting, answers to a tool's live approval) in the table, with a retention TTL. A failed write
// is logged at error level and never silently dropped, but it never fails the
// request it describes either: losing a sign-in because the trail hiccuped
// would punish the user for our fault.
package audit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// Actions.
const (
	SignIn         = "auth.sign_in"
	SignInFailed   = "auth.sign_in_failed"
	NotAllowed     = "auth.not_allowed"
	Refresh        = "auth.refresh"
	RefreshFailed  = "auth.refresh_failed"
	ReuseDetected  = "auth.reuse_detected"
	Logout         = "auth.logout"
	AccountDeleted = "auth.account_deleted"
	RateLimited    = "rate_limited"
	// ApprovalAnswered is a user's answer to a tool a running turn asked
	// to use (ApprovalReason).
	ApprovalAnswered = "chat.approval_answered"
)

// Writer stores events.
type Writer interface {
	PutAudit(ctx context.Context, ev ovrlrd.AuditEvent, retention time.Duration) error
}

// Client is who made a request, as the platform saw it.
type Client struct {
	IP        string
	UserAgent string
}

// Recorder writes audit events.
type Recorder struct {
	w         Writer
	retention time.Duration
	ipKey     []byte
	log       *slog.Logger
}

// writeTimeout bounds one audit write, so a slow table cannot hold a request.
const writeTimeout = 2 * time.Second

// New returns a Recorder. ipKey keys the address hash, so the trail can link
// events from one address without storing the address.
func New(w Writer, retention time.Duration, ipKey []byte, log *slog.Logger) *Recorder {
	return &Recorder{w: w, retention: retention, ipKey: ipKey, log: log}
}

// Record writes one event. userID may be empty; reason is a short code.
func (r *Recorder) Record(ctx context.Context, action, userID string, c Client, reason string) {
	ev := ovrlrd.AuditEvent{
		Action:    action,
		UserID:    userID,
		IPHash:    r.HashIP(c.IP),
		UserAgent: c.UserAgent[:min(len(c.UserAgent), 256)],
		Reason:    reason,
		Time:      time.Now(),
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	if err := r.w.PutAudit(ctx, ev, r.retention); err != nil {
		r.log.ErrorContext(ctx, "audit write failed", "action", action, "reason", reason, "err", err)
	}
}

// HashIP returns the keyed hash under which an address is recorded.
func (r *Recorder) HashIP(ip string) string {
	m := hmac.New(sha256.New, r.ipKey)
	m.Write([]byte(ip))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// maxReasonTool bounds the tool's name in an ApprovalReason; the CLI's
// names are far shorter.
const maxReasonTool = 128

// ApprovalReason is the reason an ApprovalAnswered event is recorded with:
// the decision, the conversation, the request and the tool, so the trail
// shows who let which tool run where. Never the user's message or the
// tool's input, which may hold anything.
func ApprovalReason(a ovrlrd.Approval) string {
	tool := ovrlrd.ClipRunes(strings.ToValidUTF8(a.ToolName, "\uFFFD"), maxReasonTool)
	return fmt.Sprintf("%s conversation=%s request=%s tool=%q", a.Decision, a.ConversationID, a.ID, tool)
}
