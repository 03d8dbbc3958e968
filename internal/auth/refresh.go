package auth

import (
	"context"
	"errors"
	"time"

	"github.com/ovrlrd/cloud/internal/audit"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

func errRefreshFailed(cause error) error {
	return ovrlrd.Wrap(ovrlrd.EUNAUTHORIZED, "Token refresh failed", cause)
}

// RefreshToken is a token presented to refresh whose signature and age
// checked out; its session has not been read yet.
type RefreshToken struct{ claims Claims }

// SessionID is the login session the token belongs to.
func (t RefreshToken) SessionID() string { return t.claims.SessionID }

// UserID is the user the token names.
func (t RefreshToken) UserID() string { return t.claims.UserID }

// CheckRefresh verifies a token presented to refresh: ours, and at most
// RefreshGrace past expiry. It reads nothing, so a caller can limit refreshes
// by the token's session before any read.
func (s *Service) CheckRefresh(ctx context.Context, authorization string, c audit.Client) (RefreshToken, error) {
	raw, err := Bearer(authorization)
	if err != nil {
		return RefreshToken{}, err
	}
	claims, err := s.Tokens.Verify(raw, s.Now(), s.RefreshGrace)
	if err != nil {
		if ovrlrd.ErrorMessage(err) == ovrlrd.MsgInvalidToken {
			return RefreshToken{}, err
		}
		s.Audit.Record(ctx, audit.RefreshFailed, "", c, "invalid_token")
		return RefreshToken{}, errRefreshFailed(err)
	}
	return RefreshToken{claims: claims}, nil
}

// Rotate moves a checked token's session to its next generation: the token
// must be of the current generation (or a retry of the last rotation).
// Presenting an older generation means the token was copied: the whole
// session is revoked.
func (s *Service) Rotate(ctx context.Context, t RefreshToken, c audit.Client) (Grant, error) {
	claims := t.claims
	g, reason, err := s.rotate(ctx, claims, s.Now())
	s.cache.forget(claims.SessionID)
	switch {
	case err == nil:
		s.Audit.Record(ctx, audit.Refresh, claims.UserID, c, reason)
		return g, nil
	case reason == "reuse":
		s.Audit.Record(ctx, audit.ReuseDetected, claims.UserID, c, "superseded_generation")
	case reason != "":
		s.Audit.Record(ctx, audit.RefreshFailed, claims.UserID, c, reason)
	}
	return Grant{}, err
}

// rotate does the refresh; reason says how it went, for the audit trail.
func (s *Service) rotate(ctx context.Context, c Claims, now time.Time) (Grant, string, error) {
	for attempt := 0; attempt < 2; attempt++ {
		sess, err := s.Store.Session(ctx, c.UserID, c.SessionID)
		if ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
			return Grant{}, "no_session", errRefreshFailed(err)
		} else if err != nil {
			return Grant{}, "", err
		}
		switch why := s.standing(sess, c, now); why {
		case "retry":
			g, err := s.grant(sess)
			return g, why, err
		case "reuse":
			// A superseded generation means the token was copied.
			if err := s.Store.RevokeSession(ctx, c.UserID, c.SessionID); err != nil {
				return Grant{}, "", err
			}
			return Grant{}, why, errRefreshFailed(errors.New("superseded generation presented"))
		case "":
		default:
			return Grant{}, why, errRefreshFailed(errors.New(why))
		}
		next, err := s.Store.RotateSession(ctx, c.UserID, c.SessionID, c.Generation, s.TTL+s.RefreshGrace)
		if ovrlrd.IsCode(err, ovrlrd.ECONFLICT) {
			continue // a concurrent refresh won; the next read sees its rotation
		}
		if err != nil {
			return Grant{}, "", err
		}
		g, err := s.grant(next)
		return g, "", err
	}
	return Grant{}, "", ovrlrd.Errorf(ovrlrd.ECONFLICT, "The session changed during the refresh; please retry.")
}
