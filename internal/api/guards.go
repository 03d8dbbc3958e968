package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/ovrlrd/cloud/internal/audit"
	"github.com/ovrlrd/cloud/internal/auth"
	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// Limiter counts requests against fixed windows shared by all instances.
type Limiter interface {
	// Hit counts one request in a write of its own.
	Hit(ctx context.Context, l ovrlrd.RateLimit) (ovrlrd.RateDecision, error)
	// Counted reads the window of a request that another write counted.
	Counted(ctx context.Context, l ovrlrd.RateLimit) (ovrlrd.RateDecision, error)
}

// client is the caller as the platform saw it, for the audit trail.
func client(r *http.Request) audit.Client {
	return audit.Client{IP: ClientIP(r), UserAgent: r.UserAgent()}
}

func rateLimit(class string, l config.Limit, key string) ovrlrd.RateLimit {
	return ovrlrd.RateLimit{Key: class + "#" + key, N: l.N, Window: l.Window}
}

// allow counts the request against l under key and answers 429 when the
// window is spent. It reports whether the request may go on.
func (s *server) allow(w http.ResponseWriter, r *http.Request, class string, l config.Limit, key, userID string) bool {
	d, err := s.Limiter.Hit(r.Context(), rateLimit(class, l, key))
	return !s.failed(w, r, err) && s.decided(w, r, class, userID, d)
}

// decided sets the headers of d, and answers 429 when d refused the
// request. It reports whether the request may go on.
func (s *server) decided(w http.ResponseWriter, r *http.Request, class, userID string, d ovrlrd.RateDecision) bool {
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
	writeError(w, r, s.Log, ovrlrd.ErrRateLimited)
	return false
}

// principalHandler is a handler of a protected route.
type principalHandler func(w http.ResponseWriter, r *http.Request, p auth.Principal)

// signedIn checks the bearer token before next.
func (s *server) signedIn(next principalHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if p, err := s.Auth.Authenticate(r.Context(), r.Header.Get("Authorization")); !s.failed(w, r, err) {
			next(w, r, p)
		}
	}
}

// authed checks the bearer token, then counts the request against the
// user's limit l in class's bucket, then runs next.
func (s *server) authed(class string, l config.Limit, next principalHandler) http.HandlerFunc {
	return s.signedIn(func(w http.ResponseWriter, r *http.Request, p auth.Principal) {
		if s.allow(w, r, class, l, p.UserID, p.UserID) {
			next(w, r, p)
		}
	})
}

// reading is authed for routes that only read: next runs while the request
// is counted, and its answer is held back until the count allows it, so
// the client waits for one round trip, not two. A refused request's answer
// is dropped.
func (s *server) reading(class string, l config.Limit, next principalHandler) http.HandlerFunc {
	return s.signedIn(func(w http.ResponseWriter, r *http.Request, p auth.Principal) {
		var (
			d       ovrlrd.RateDecision
			err     error
			counted sync.WaitGroup
		)
		counted.Go(func() { d, err = s.Limiter.Hit(r.Context(), rateLimit(class, l, p.UserID)) })
		held := &heldResponse{header: http.Header{}}
		next(held, r, p)
		counted.Wait()
		if !s.failed(w, r, err) && s.decided(w, r, class, p.UserID, d) {
			held.sendTo(w)
		}
	})
}

// meteredHandler is a handler that counts its request inside the
// transaction of what it writes.
type meteredHandler func(w http.ResponseWriter, r *http.Request, p auth.Principal, m *meter)

// metered is authed for routes that write: the request is counted inside
// the route's own transaction (m.Count gives its limit to the store), so it
// costs no round trip of its own. The window is read meanwhile, for the
// headers.
func (s *server) metered(class string, l config.Limit, next meteredHandler) http.HandlerFunc {
	return s.signedIn(func(w http.ResponseWriter, r *http.Request, p auth.Principal) {
		m := &meter{s: s, r: r, class: class, userID: p.UserID, limit: rateLimit(class, l, p.UserID)}
		defer m.read.Wait()
		next(w, r, p, m)
	})
}

// meter is one request's count against its user's limit, made by the
// route's own write.
type meter struct {
	s             *server
	r             *http.Request
	class, userID string
	limit         ovrlrd.RateLimit
	counted       bool           // Count was called: the window is being read
	read          sync.WaitGroup // done once d and err are set
	d             ovrlrd.RateDecision
	err           error
}

// Count is the limit for the store to count the request against, given as
// the write begins: the read of the window starts beside it, so neither
// waits for the other.
func (m *meter) Count() ovrlrd.RateLimit {
	if !m.counted {
		m.counted = true
		m.read.Go(func() { m.d, m.err = m.s.Limiter.Counted(m.r.Context(), m.limit) })
	}
	return m.limit
}

// answer sets the headers of a request whose write, ending with err,
// counted it, or answers err, which may also come before any write. It
// reports whether the handler goes on to answer the request. A request
// that failed for another reason than the limit counted nothing, so it is
// counted on its own: every try counts, refused or not.
func (m *meter) answer(w http.ResponseWriter, r *http.Request, err error) bool {
	m.read.Wait() // the window's read, if it began
	switch {
	case errors.Is(err, ovrlrd.ErrRateLimited):
		d := m.limit.Decide(time.Now(), false, 0)
		if m.counted && m.err == nil {
			d.Reset = m.d.Reset
		}
		m.s.decided(w, r, m.class, m.userID, d)
		return false
	case err != nil:
		d, hitErr := m.s.Limiter.Hit(r.Context(), m.limit)
		if hitErr == nil && !m.s.decided(w, r, m.class, m.userID, d) {
			return false
		}
		if ovrlrd.IsCode(err, ovrlrd.ERATELIMIT) {
			// The daily budget, which renews at midnight UTC.
			midnight := time.Now().UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
			w.Header().Set("Retry-After", strconv.Itoa(int(time.Until(midnight)/time.Second)+1))
		}
		writeError(w, r, m.s.Log, err)
		return false
	case m.err != nil:
		m.s.Log.WarnContext(r.Context(), "reading a rate-limit window", "err", m.err)
	case m.counted:
		m.s.decided(w, r, m.class, m.userID, m.d)
	}
	return true
}

// Limit classes: each is its own bucket per key. Refresh counts per session,
// the others per user.
const (
	classRead     = "read"
	classWrite    = "write"
	classTurn     = "turn"
	classWatch    = "watch"
	classApproval = "approval"
	classRefresh  = "refresh"
	classLogout   = "logout"
	classAccount  = "account"
)
