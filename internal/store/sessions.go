package store

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"time"

	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// sessionCleanupGrace keeps an expired session in the table a few more days
// for looking into a reuse report. Reads enforce expiry themselves; the TTL
// sweeper only cleans up, and late.
const sessionCleanupGrace = 3 * 24 * time.Hour

// sessionItem lives under its user so that deleting an account finds every
// session with one Query. Times are epoch milliseconds: numbers compare
// correctly in condition expressions, RFC 3339 strings with trimmed
// fractions do not.
//
// VerifiedEmail is only ever an address Apple marked verified. Sessions
// written before it existed kept the profile's e-mail, verified or not, as
// "email": that attribute is never read, so it cannot satisfy the allow-list.
type sessionItem struct {
	PK                 string `dynamo:"PK,hash"`
	SK                 string `dynamo:"SK,range"`
	VerifiedEmail      string `dynamo:"verifiedEmail,omitempty"`
	AppleSub           string `dynamo:"appleSub"`
	Generation         int    `dynamo:"generation"`
	PreviousGeneration int    `dynamo:"previousGeneration"`
	RotatedAt          int64  `dynamo:"rotatedAt,omitempty"`
	Revoked            bool   `dynamo:"revoked"`
	CreatedAt          int64  `dynamo:"createdAt"`
	ExpiresAt          int64  `dynamo:"expiresAt"`
	TTL                int64  `dynamo:"ttl"`
}

func sessionPK(userID string) string { return "USER#" + userID }
func sessionSK(sid string) string    { return "SESSION#" + sid }
func sessionIDOf(sk string) string   { return strings.TrimPrefix(sk, "SESSION#") }

func (it sessionItem) domain(userID string) ovrlrd.LoginSession {
	ls := ovrlrd.LoginSession{
		ID:                 sessionIDOf(it.SK),
		UserID:             userID,
		Email:              it.VerifiedEmail,
		AppleSub:           it.AppleSub,
		Generation:         it.Generation,
		PreviousGeneration: it.PreviousGeneration,
		Revoked:            it.Revoked,
		CreatedAt:          timeOf(it.CreatedAt),
		ExpiresAt:          timeOf(it.ExpiresAt),
	}
	if it.RotatedAt != 0 { // never rotated: leave the zero time
		ls.RotatedAt = timeOf(it.RotatedAt)
	}
	return ls
}

func errNoSession() error { return ovrlrd.Errorf(ovrlrd.ENOTFOUND, "Session not found.") }

// CreateSession starts a login session of user at generation 1. The
// session keeps the e-mail address Apple verified at this sign-in ("" when
// it did not) and the Apple subject, so the sign-up allow-list can be
// checked on every request without reading the profile; rotations keep
// them. It is refused, like every write of the account, once the account's
// deletion has begun.
func (s *Store) CreateSession(ctx context.Context, user ovrlrd.User, verifiedEmail string, ttl time.Duration) (ovrlrd.LoginSession, error) {
	userID := user.ID
	if userID == "" || user.AppleSub == "" || ttl <= 0 {
		return ovrlrd.LoginSession{}, ovrlrd.Errorf(ovrlrd.EINVALID, "A session needs a user and a lifetime.")
	}
	if len(verifiedEmail) > maxEmail {
		return ovrlrd.LoginSession{}, ovrlrd.Errorf(ovrlrd.EINVALID, "The email address is too long.")
	}
	now := s.now()
	exp := now.Add(ttl)
	it := sessionItem{
		PK: sessionPK(userID), SK: sessionSK(rand.Text()),
		VerifiedEmail: verifiedEmail, AppleSub: user.AppleSub,
		Generation: 1, CreatedAt: now.UnixMilli(), ExpiresAt: exp.UnixMilli(),
		TTL: ttlOf(exp.Add(sessionCleanupGrace)),
	}
	// 128 random bits never collide in practice; the condition makes sure a
	// collision could never hand one user another's session.
	err := s.db.WriteTx().
		Check(s.accountOpenCheck(userID)).
		Put(s.table.Put(it).If("attribute_not_exists('PK')")).
		Idempotent(true).Run(ctx)
	if reasonCode(cancelReasons(err), 0) == reasonCondition {
		return ovrlrd.LoginSession{}, errAccountDeleted()
	}
	if err != nil {
		return ovrlrd.LoginSession{}, dbError("create session", err)
	}
	return it.domain(userID), nil
}

// Session returns a session, revoked or not. An expired one is reported as
// not found: the TTL sweeper may take days to delete it.
func (s *Store) Session(ctx context.Context, userID, sid string) (ovrlrd.LoginSession, error) {
	if userID == "" || sid == "" {
		return ovrlrd.LoginSession{}, errNoSession()
	}
	var it sessionItem
	err := s.table.Get(attrPK, sessionPK(userID)).Range(attrSK, dynamo.Equal, sessionSK(sid)).
		Consistent(true).One(ctx, &it)
	if errors.Is(err, dynamo.ErrNotFound) {
		return ovrlrd.LoginSession{}, errNoSession()
	}
	if err != nil {
		return ovrlrd.LoginSession{}, dbError("get session", err)
	}
	if it.ExpiresAt <= s.now().UnixMilli() {
		return ovrlrd.LoginSession{}, errNoSession()
	}
	return it.domain(userID), nil
}

// RotateSession advances a live session from fromGeneration to the next one
// in a single conditional write, so of two concurrent refreshes exactly one
// wins. It fails with ECONFLICT when the session is revoked or no longer at
// fromGeneration (the caller tells a lost-response retry from token reuse
// using PreviousGeneration and RotatedAt), and with ENOTFOUND when the
// session is gone or expired.
func (s *Store) RotateSession(ctx context.Context, userID, sid string, fromGeneration int, ttl time.Duration) (ovrlrd.LoginSession, error) {
	if userID == "" || sid == "" || ttl <= 0 {
		return ovrlrd.LoginSession{}, ovrlrd.Errorf(ovrlrd.EINVALID, "A session rotation needs a user, a session and a lifetime.")
	}
	now := s.now()
	exp := now.Add(ttl)
	var it sessionItem
	err := s.table.Update(attrPK, sessionPK(userID)).Range(attrSK, sessionSK(sid)).
		Set("generation", fromGeneration+1).
		Set("previousGeneration", fromGeneration).
		Set("rotatedAt", now.UnixMilli()).
		Set("expiresAt", exp.UnixMilli()).
		Set("ttl", ttlOf(exp.Add(sessionCleanupGrace))).
		If("'revoked' = ? AND 'generation' = ? AND 'expiresAt' > ?", false, fromGeneration, now.UnixMilli()).
		Value(ctx, &it)
	if dynamo.IsCondCheckFailed(err) {
		// Only the failure path pays for this read, to tell gone from stale.
		if _, gerr := s.Session(ctx, userID, sid); gerr != nil {
			return ovrlrd.LoginSession{}, gerr
		}
		return ovrlrd.LoginSession{}, ovrlrd.Wrap(ovrlrd.ECONFLICT, "The session was already refreshed or revoked.", err)
	}
	if err != nil {
		return ovrlrd.LoginSession{}, dbError("rotate session", err)
	}
	return it.domain(userID), nil
}

// RevokeSession revokes one session. Revoking a revoked or missing session
// succeeds, so sign-out can be retried safely.
func (s *Store) RevokeSession(ctx context.Context, userID, sid string) error {
	if userID == "" || sid == "" {
		return nil
	}
	err := s.table.Update(attrPK, sessionPK(userID)).Range(attrSK, sessionSK(sid)).
		Set("revoked", true).
		// Without the condition, an update would create a stub item.
		If("attribute_exists('PK')").
		Run(ctx)
	if err != nil && !dynamo.IsCondCheckFailed(err) {
		return dbError("revoke session", err)
	}
	return nil
}
