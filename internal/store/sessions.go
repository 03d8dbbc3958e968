package store

import (
	"context"
	"crypto/rand"
	"strings"
	"time"

	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// sessionCleanupGrace keeps an expired session in the table a few more days
// for looking into a reuse report. Reads enforce expiry themselves; the TTL
// sweeper only cleans up, and late.
const sessionCleanupGrace = 3 * 24 * time.Hour

const sessionPrefix = "SESSION#"

// sessionItem lives under its user (SK SESSION#<id>) so that deleting an
// account finds every session with one Query. Times are epoch milliseconds:
// numbers compare correctly in condition expressions, RFC 3339 strings with
// trimmed fractions do not.
//
// VerifiedEmail is only ever an address Apple marked verified. Sessions
// written before it existed kept the profile's e-mail, verified or not, as
// "email": that attribute is never read, so it cannot satisfy the allow-list.
type sessionItem struct {
	itemKey
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

func (it sessionItem) session(userID string) ovrlrd.LoginSession {
	ls := ovrlrd.LoginSession{
		ID: strings.TrimPrefix(it.SK, sessionPrefix), UserID: userID,
		Email: it.VerifiedEmail, AppleSub: it.AppleSub,
		Generation: it.Generation, PreviousGeneration: it.PreviousGeneration, Revoked: it.Revoked,
		CreatedAt: timeOf(it.CreatedAt), ExpiresAt: timeOf(it.ExpiresAt),
	}
	if it.RotatedAt != 0 { // never rotated: leave the zero time
		ls.RotatedAt = timeOf(it.RotatedAt)
	}
	return ls
}

var errNoSession = ovrlrd.Errorf(ovrlrd.ENOTFOUND, "Session not found.")

// CreateSession starts a login session of user at generation 1. The
// session keeps the e-mail address Apple verified at this sign-in ("" when
// it did not) and the Apple subject, so the sign-up allow-list can be
// checked on every request without reading the profile; rotations keep
// them. It is refused, like every write of the account, once the account's
// deletion has begun.
func (s *Store) CreateSession(ctx context.Context, user ovrlrd.User, verifiedEmail string, ttl time.Duration) (ovrlrd.LoginSession, error) {
	if user.ID == "" || user.AppleSub == "" || ttl <= 0 {
		return ovrlrd.LoginSession{}, ovrlrd.Errorf(ovrlrd.EINVALID, "A session needs a user and a lifetime.")
	}
	if len(verifiedEmail) > maxEmail {
		return ovrlrd.LoginSession{}, ovrlrd.Errorf(ovrlrd.EINVALID, "The email address is too long.")
	}
	now := s.now()
	exp := now.Add(ttl)
	it := sessionItem{
		itemKey:       itemKey{userPK(user.ID), sessionPrefix + rand.Text()},
		VerifiedEmail: verifiedEmail, AppleSub: user.AppleSub,
		Generation: 1, CreatedAt: now.UnixMilli(), ExpiresAt: exp.UnixMilli(),
		TTL: exp.Add(sessionCleanupGrace).Unix(),
	}
	// 128 random bits never collide in practice; the condition makes sure a
	// collision could never hand one user another's session.
	err := s.runTx(ctx, "create session", func(error) (*dynamo.WriteTx, error) {
		return s.db.WriteTx().Check(s.accountOpen(user.ID)).Put(s.table.Put(it).If("attribute_not_exists('PK')")), nil
	}, errAccountDeleted)
	if err != nil {
		return ovrlrd.LoginSession{}, err
	}
	return it.session(user.ID), nil
}

// Session returns a session, revoked or not. An expired one is reported as
// not found: the TTL sweeper may take days to delete it.
func (s *Store) Session(ctx context.Context, userID, sid string) (ovrlrd.LoginSession, error) {
	if userID == "" || sid == "" {
		return ovrlrd.LoginSession{}, errNoSession
	}
	var it sessionItem
	if err := s.get(ctx, "get session", userPK(userID), sessionPrefix+sid, &it, errNoSession); err != nil {
		return ovrlrd.LoginSession{}, err
	}
	if it.ExpiresAt <= s.nowMillis() {
		return ovrlrd.LoginSession{}, errNoSession
	}
	return it.session(userID), nil
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
	err := s.table.Update(attrPK, userPK(userID)).Range(attrSK, sessionPrefix+sid).
		Set("generation", fromGeneration+1).
		Set("previousGeneration", fromGeneration).
		Set("rotatedAt", now.UnixMilli()).
		Set("expiresAt", exp.UnixMilli()).
		Set(attrTTL, exp.Add(sessionCleanupGrace).Unix()).
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
	return it.session(userID), nil
}

// RevokeSession revokes one session. Revoking a revoked or missing session
// succeeds, so sign-out can be retried safely.
func (s *Store) RevokeSession(ctx context.Context, userID, sid string) error {
	if userID == "" || sid == "" {
		return nil
	}
	err := s.table.Update(attrPK, userPK(userID)).Range(attrSK, sessionPrefix+sid).
		Set("revoked", true).
		// Without the condition, an update would create a stub item.
		If("attribute_exists('PK')").
		Run(ctx)
	return written("revoke session", err, nil)
}
