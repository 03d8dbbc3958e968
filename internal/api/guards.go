package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/ovrlrd/cloud/internal/audit"
	"github.com/ovrlrd/cloud/internal/auth"
	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// Limiter counts requests against fixed windows shared by all instances.
type Limiter interface {
	Hit(ctx context.Context, key string, limit int, window time.Duration) (ovrlrd.RateDecision, error)
}

// client is the caller as the platform saw it, for the audit trail.
func client(r *http.Request) audit.Client {
	return audit.Client{IP: ClientIP(r), UserAgent: r.UserAgent()}
}

// allow counts the request against l under key and answers 429 when the
// window is spent. It reports whether the request may go on.
func (s *server) allow(w http.ResponseWriter, r *http.Request, class string, l config.Limit, key, userID string) bool {
	d, err := s.Limiter.Hit(r.Context(), class+"#"+key, l.N, l.Window)
	if err != nil {
		writeError(w, r, s.Log, err)
		return false
	}
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(d.Limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(d.Remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(d.Reset.Unix(), 10))
	if d.Allowed {
		return true
	}
	retry := max(int(time.Until(d.Reset).Round(time.Second)/time.Second), 1)
	h.Set("Retry-After", strconv.Itoa(retry))
	s.Auth.Audit.Record(r.Context(), audit.RateLimited, userID, client(r), class)
	writeError(w, r, s.Log, ovrlrd.Errorf(ovrlrd.ERATELIMIT, "Too many requests. Please slow down."))
	return false
}

// principalHandler is a handler of a protected route.
type principalHandler func(w http.ResponseWriter, r *http.Request, p auth.Principal)

// authed checks the bearer token, then the user's limit l in class's bucket.
func (s *server) authed(class string, l config.Limit, next principalHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.Auth.Authenticate(r.Context(), r.Header.Get("Authorization"))
		if err != nil {
			writeError(w, r, s.Log, err)
			return
		}
		if !s.allow(w, r, class, l, p.UserID, p.UserID) {
			return
		}
		next(w, r, p)
	}
}

// Limit classes: each is its own bucket per key. Refresh counts per session,
// the others per user.
const (
	classRead    = "read"
	classWrite   = "write"
	classTurn    = "turn"
	classRefresh = "refresh"
	classLogout  = "logout"
	classAccount = "account"
)
