package store

import (
	"context"
	"errors"

	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

const (
	skProfile = "PROFILE"
	skApple   = "APPLE"
	// maxAppleSub bounds the key built from Apple's subject claim; real ones
	// are under 64 characters.
	maxAppleSub = 255
	maxEmail    = 320
	// txAttempts bounds retries of a transaction that lost a race.
	txAttempts = 8
)

func userPK(id string) string   { return "USER#" + id }
func applePK(sub string) string { return "APPLE#" + sub }

// userItem is a user profile, PK USER#<id>, SK PROFILE.
type userItem struct {
	PK        string `dynamo:"PK"`
	SK        string `dynamo:"SK"`
	ID        string `dynamo:"id"`
	AppleSub  string `dynamo:"appleSub"`
	Email     string `dynamo:"email,omitempty"`
	CreatedAt int64  `dynamo:"createdAt"`
	UpdatedAt int64  `dynamo:"updatedAt"`
}

// appleItem claims an Apple subject for one user, PK APPLE#<sub>, SK APPLE.
// Its existence is what keeps the subject unique.
type appleItem struct {
	PK     string `dynamo:"PK"`
	SK     string `dynamo:"SK"`
	UserID string `dynamo:"userId"`
}

func (it userItem) user() ovrlrd.User {
	return ovrlrd.User{
		ID: it.ID, AppleSub: it.AppleSub, Email: it.Email,
		CreatedAt: timeOf(it.CreatedAt), UpdatedAt: timeOf(it.UpdatedAt),
	}
}

func errUserNotFound() error { return ovrlrd.Errorf(ovrlrd.ENOTFOUND, "User not found.") }

// CreateUser creates an account and claims appleSub for it in one
// transaction, so there is never a profile without its claim or the reverse.
// A subject that is already claimed is ECONFLICT: the caller signs that user
// in instead.
func (s *Store) CreateUser(ctx context.Context, email, appleSub string) (ovrlrd.User, error) {
	if appleSub == "" || len(appleSub) > maxAppleSub {
		return ovrlrd.User{}, ovrlrd.Errorf(ovrlrd.EINVALID, "The Apple account id is invalid.")
	}
	if len(email) > maxEmail {
		return ovrlrd.User{}, ovrlrd.Errorf(ovrlrd.EINVALID, "The email address is too long.")
	}
	now := s.nowMillis()
	it := userItem{ID: newID(), AppleSub: appleSub, Email: email, CreatedAt: now, UpdatedAt: now}
	it.PK, it.SK = userPK(it.ID), skProfile
	claim := appleItem{PK: applePK(appleSub), SK: skApple, UserID: it.ID}
	for attempt := 0; ; attempt++ {
		err := s.db.WriteTx().
			Put(s.table.Put(it).If("attribute_not_exists($)", attrPK)).
			Put(s.table.Put(claim).If("attribute_not_exists($)", attrPK)).
			Idempotent(true).
			Run(ctx)
		reasons := cancelReasons(err)
		switch {
		case err == nil:
			return it.user(), nil
		case reasonCode(reasons, 1) == reasonCondition:
			return ovrlrd.User{}, ovrlrd.Errorf(ovrlrd.ECONFLICT, "This Apple account is already registered.")
		case retryable(reasons) && attempt+1 < txAttempts:
			// A concurrent sign-in with the same subject; its outcome
			// decides ours, so wait for it rather than guessing.
			if err := pause(ctx, attempt); err != nil {
				return ovrlrd.User{}, dbError("create user", err)
			}
		default:
			return ovrlrd.User{}, dbError("create user", err)
		}
	}
}

// UserByAppleSub returns the user who claimed appleSub. Reads are strongly
// consistent because sign-in reads right after a concurrent create.
func (s *Store) UserByAppleSub(ctx context.Context, appleSub string) (ovrlrd.User, error) {
	if appleSub == "" || len(appleSub) > maxAppleSub {
		return ovrlrd.User{}, errUserNotFound()
	}
	var claim appleItem
	err := s.table.Get(attrPK, applePK(appleSub)).Range(attrSK, dynamo.Equal, skApple).
		Consistent(true).One(ctx, &claim)
	if errors.Is(err, dynamo.ErrNotFound) {
		return ovrlrd.User{}, errUserNotFound()
	}
	if err != nil {
		return ovrlrd.User{}, dbError("get apple claim", err)
	}
	return s.User(ctx, claim.UserID)
}

// User returns the user with id.
func (s *Store) User(ctx context.Context, id string) (ovrlrd.User, error) {
	if !isID(id) {
		return ovrlrd.User{}, errUserNotFound()
	}
	var it userItem
	err := s.table.Get(attrPK, userPK(id)).Range(attrSK, dynamo.Equal, skProfile).
		Consistent(true).One(ctx, &it)
	if errors.Is(err, dynamo.ErrNotFound) {
		return ovrlrd.User{}, errUserNotFound()
	}
	if err != nil {
		return ovrlrd.User{}, dbError("get user", err)
	}
	return it.user(), nil
}
