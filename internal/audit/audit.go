// Package audit records security events (sign-ins, refreshes, reuse, logout,
// deletion, rate limiting) in the table, with a retention TTL. A failed write
// is logged at error level and never silently dropped, but it never fails the
// request it describes either: losing a sign-in because the trail hiccuped
// would punish the user for our fault.
package audit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
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
