// Package auth signs users in with Apple, issues and rotates session tokens,
// and checks them on every protected request. The app knows one token; the
// server keeps a login session behind it, so a token can be revoked, rotated
// and checked for reuse.
package auth

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/ovrlrd/cloud/internal/apple"
	"github.com/ovrlrd/cloud/internal/audit"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/store"
)

// Store is the state auth needs.
type Store interface {
	UserByAppleSub(ctx context.Context, sub string) (ovrlrd.User, error)
	CreateUser(ctx context.Context, email, appleSub string) (ovrlrd.User, error)
	CreateSession(ctx context.Context, user ovrlrd.User, verifiedEmail string, ttl time.Duration) (ovrlrd.LoginSession, error)
	Session(ctx context.Context, userID, sid string) (ovrlrd.LoginSession, error)
	RotateSession(ctx context.Context, userID, sid string, fromGeneration int, ttl time.Duration) (ovrlrd.LoginSession, error)
	RevokeSession(ctx context.Context, userID, sid string) error
	User(ctx context.Context, id string) (ovrlrd.User, error)
	BeginDeleteUser(ctx context.Context, userID string) error
	DeleteSessions(ctx context.Context, userID string) error
	DeleteUser(ctx context.Context, userID string) ([]string, error)
	PutDevice(ctx context.Context, d ovrlrd.Device) error
}

// Verifier checks Apple identity tokens.
type Verifier interface {
	Verify(ctx context.Context, identityToken, nonce string) (apple.Identity, error)
}

// AccountCleaner removes what other parts of the service keep for a deleted
// account outside the table (transcripts, workspaces, running turns).
type AccountCleaner func(ctx context.Context, userID string, conversationIDs []string) error

// Finisher runs FinishDeletion for an account outside the request that
// began its deletion, retrying it until it succeeds: the request's time is
// too short for a large account. Finish only hands the work over; an error
// means it could not.
type Finisher interface {
	Finish(ctx context.Context, userID string) error
}

// Options configure a Service.
type Options struct {
	Store         Store
	Apple         Verifier
	Tokens        *Issuer
	Policy        Policy
	Audit         *audit.Recorder
	Log           *slog.Logger
	TTL           time.Duration // token lifetime
	RefreshGrace  time.Duration // how long past expiry a token may be refreshed
	CheckInterval time.Duration // how long an instance trusts a session it read
	DeviceEnv     ovrlrd.Environment
	Cleaners      []AccountCleaner
	// Finisher finishes deletions in the background; nil finishes them
	// within DeleteAccount.
	Finisher Finisher
	Now      func() time.Time
}

// Service is sign-in, refresh, logout, account deletion and the per-request
// token check.
type Service struct {
	Options
	cache *sessionCache
}

// RetryWindow is how long after a rotation the superseded token may still be
// refreshed, getting the current token back: a client whose refresh response
// was lost must not be logged out, nor flagged as a thief.
const RetryWindow = 30 * time.Second

// New returns a Service.
func New(o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{Options: o, cache: &sessionCache{ttl: o.CheckInterval, entries: map[string]cached{}}}
}

// Grant is what sign-in and refresh answer; the app requires all three.
type Grant struct {
	SessionToken string `json:"sessionToken"`
	UserID       string `json:"userId"`
	ExpiresIn    int64  `json:"expiresIn"`
}

// Principal is the caller of a protected route.
type Principal struct {
	UserID    string
	SessionID string
}

// SignInRequest is the body of POST /auth.
type SignInRequest struct {
	IdentityToken string  `json:"identityToken"`
	DeviceToken   *string `json:"deviceToken"`
	DeviceID      *string `json:"deviceId"`
	// Nonce is the web client's: the raw value whose SHA-256 it asked
	// Apple to put in the token. The app sends none.
	Nonce *string `json:"nonce"`
}

// SignIn verifies an Apple identity token and starts a login session.
func (s *Service) SignIn(ctx context.Context, req SignInRequest, c audit.Client) (Grant, error) {
	nonce := ""
	if req.Nonce != nil {
		nonce = *req.Nonce
	}
	id, err := s.Apple.Verify(ctx, req.IdentityToken, nonce)
	if err != nil {
		reason := "invalid_token"
		if ovrlrd.IsCode(err, ovrlrd.EUNAVAILABLE) {
			reason = "jwks_unavailable"
		}
		s.Audit.Record(ctx, audit.SignInFailed, "", c, reason)
		return Grant{}, err
	}
	// Only an address Apple verified may satisfy the allow-list, now and in
	// every later check of the session.
	email := ""
	if id.EmailVerified {
		email = id.Email
	}
	user, err := s.userFor(ctx, id, email, c)
	if err != nil {
		if ovrlrd.IsCode(err, ovrlrd.EFORBIDDEN) {
			s.Audit.Record(ctx, audit.NotAllowed, user.ID, c, "allow_list")
		} else {
			s.Audit.Record(ctx, audit.SignInFailed, "", c, "store")
		}
		return Grant{}, err
	}
	if req.DeviceToken != nil {
		d := ovrlrd.Device{UserID: user.ID, Token: *req.DeviceToken, Environment: s.DeviceEnv}
		if err := s.Store.PutDevice(ctx, d); err != nil {
			return Grant{}, err
		}
	}
	sess, err := s.Store.CreateSession(ctx, user, email, s.TTL+s.RefreshGrace)
	if err != nil {
		return Grant{}, err
	}
	g, err := s.grant(sess)
	if err != nil {
		return Grant{}, err
	}
	s.Audit.Record(ctx, audit.SignIn, user.ID, c, "")
	return g, nil
}

// userFor finds or creates the account of an Apple identity, applying the
// allow-list both to new and to existing accounts.
func (s *Service) userFor(ctx context.Context, id apple.Identity, email string, c audit.Client) (ovrlrd.User, error) {
	user, err := s.Store.UserByAppleSub(ctx, id.Subject)
	switch {
	case err == nil:
		if !s.Policy.Allows(email, id.Subject) {
			return user, errNotAllowed()
		}
		return user, nil
	case errors.Is(err, store.ErrAccountDeleted):
		// Its deletion stopped half way: finish it, then this is a sign-up.
		if err := s.FinishDeletion(ctx, user.ID); err != nil && !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
			return ovrlrd.User{}, err
		}
		s.Audit.Record(ctx, audit.AccountDeleted, user.ID, c, "finished_at_sign_in")
	case !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND):
		return ovrlrd.User{}, err
	}
	if !s.Policy.MaySignUp(email, id.Subject) {
		return ovrlrd.User{}, errNotAllowed()
	}
	user, err = s.Store.CreateUser(ctx, id.Email, id.Subject)
	if ovrlrd.IsCode(err, ovrlrd.ECONFLICT) {
		// Another sign-in of the same person created it a moment ago.
		return s.Store.UserByAppleSub(ctx, id.Subject)
	}
	return user, err
}

func errNotAllowed() error { return ovrlrd.Errorf(ovrlrd.EFORBIDDEN, "User not authorized") }

// grant signs the token of a session's current generation. The token is a
// function of the session alone (issued at the generation's start), so the
// retry after a lost response gets the very same token again.
func (s *Service) grant(sess ovrlrd.LoginSession) (Grant, error) {
	start := sess.CreatedAt
	if sess.Generation > 1 && !sess.RotatedAt.IsZero() {
		start = sess.RotatedAt
	}
	iat := start.Truncate(time.Second)
	raw, err := s.Tokens.Sign(Claims{
		UserID: sess.UserID, SessionID: sess.ID, Generation: sess.Generation,
		IssuedAt: iat, ExpiresAt: iat.Add(s.TTL),
	})
	if err != nil {
		return Grant{}, err // already an EINTERNAL
	}
	return Grant{SessionToken: raw, UserID: sess.UserID, ExpiresIn: int64(s.TTL / time.Second)}, nil
}

// Authenticate checks the bearer token of a protected request.
func (s *Service) Authenticate(ctx context.Context, authorization string) (Principal, error) {
	raw, err := Bearer(authorization)
	if err != nil {
		return Principal{}, err
	}
	now := s.Now()
	claims, err := s.Tokens.Verify(raw, now, 0)
	if err != nil {
		return Principal{}, err
	}
	sess, ok := s.cache.get(claims.SessionID, now)
	if !ok || sess.Generation < claims.Generation {
		if sess, err = s.Store.Session(ctx, claims.UserID, claims.SessionID); err != nil {
			if ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
				return Principal{}, invalid(err)
			}
			return Principal{}, err
		}
		s.cache.put(sess, now)
	}
	// The previous generation stays usable briefly after a rotation: the
	// app lets requests already under way carry the old token.
	if why := s.standing(sess, claims, now); why != "" && why != "retry" {
		return Principal{}, invalid(errors.New(why))
	}
	return Principal{UserID: sess.UserID, SessionID: sess.ID}, nil
}

// standing is how a token stands with its session: "" for the current
// generation, "retry" for the previous one within RetryWindow of the
// rotation, or why it is refused.
func (s *Service) standing(sess ovrlrd.LoginSession, c Claims, now time.Time) string {
	switch {
	case sess.Revoked || sess.UserID != c.UserID:
		return "revoked"
	case !s.Policy.Allows(sess.Email, sess.AppleSub):
		return "allow_list"
	case c.Generation == sess.Generation:
		return ""
	case c.Generation == sess.PreviousGeneration && now.Sub(sess.RotatedAt) <= RetryWindow:
		return "retry"
	}
	return "reuse"
}

// Logout revokes the caller's login session.
func (s *Service) Logout(ctx context.Context, p Principal, c audit.Client) error {
	if err := s.Store.RevokeSession(ctx, p.UserID, p.SessionID); err != nil {
		return err
	}
	s.cache.forget(p.SessionID)
	s.Audit.Record(ctx, audit.Logout, p.UserID, c, "")
	return nil
}

// DeleteAccount deletes the caller's account and everything kept for it.
// It marks the account, which refuses its writes at once, hands the rest to
// the Finisher and ends the account's sessions. The audit trail stays: it is
// keyed by a random id and expires by TTL. An account already deleted, or
// being deleted, is answered as its sessions are: they are gone.
func (s *Service) DeleteAccount(ctx context.Context, p Principal, c audit.Client) error {
	err := s.Store.BeginDeleteUser(ctx, p.UserID)
	s.cache.forget(p.SessionID)
	if ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
		return invalid(err)
	}
	if err != nil {
		return err
	}
	s.Audit.Record(ctx, audit.AccountDeleted, p.UserID, c, "")
	if err := s.handOver(ctx, p.UserID); err != nil {
		return err
	}
	// The finisher deletes them too, but the app's token must stop working
	// now, not once the finisher got to it.
	return s.Store.DeleteSessions(ctx, p.UserID)
}

// handOver gives a begun deletion to the Finisher, or finishes it here when
// there is none or it cannot take it: no one else would until a sign-in.
func (s *Service) handOver(ctx context.Context, userID string) error {
	if s.Finisher != nil {
		err := s.Finisher.Finish(ctx, userID)
		if err == nil {
			return nil
		}
		s.Log.WarnContext(ctx, "account deletion: finishing in the request", "err", err.Error())
	}
	return s.FinishDeletion(ctx, userID)
}

// FinishDeletion finishes the deletion of an account whose deletion has
// begun. It may run more than once for one deletion, and concurrently: each
// step is idempotent. An account not being deleted is refused: the
// finisher's event names a user, and must never be able to delete an open
// account.
func (s *Service) FinishDeletion(ctx context.Context, userID string) error {
	_, err := s.Store.User(ctx, userID)
	var convs []string
	switch {
	case errors.Is(err, store.ErrAccountDeleted):
		convs, err = s.Store.DeleteUser(ctx, userID)
		if err != nil && !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
			return err
		}
	case ovrlrd.IsCode(err, ovrlrd.ENOTFOUND):
		// The table is done, but the attempt that finished it may have
		// stopped before the cleaners did.
	case err != nil:
		return err
	default:
		return ovrlrd.Errorf(ovrlrd.EINVALID, "The account is not being deleted.")
	}
	for _, clean := range s.Cleaners {
		if err := clean(ctx, userID, convs); err != nil {
			return err
		}
	}
	return nil
}
