package store

import (
	"context"
	"errors"

	"github.com/google/uuid"
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
	// attrDeletedAt marks a profile whose account is being deleted.
	attrDeletedAt = "deletedAt"
)

// userPK is the partition of everything an account owns: its profile,
// sessions, devices, conversations and their tombstones, daily usage.
func userPK(id string) string   { return "USER#" + id }
func applePK(sub string) string { return "APPLE#" + sub }

// userItem is a user profile, PK USER#<id>, SK PROFILE. DeletedAt is set
// when the account's deletion begins and never cleared: from then on every
// write of the account is refused (see accountOpen). When the deletion ends
// the profile becomes a tombstone, with only DeletedAt and a TTL.
type userItem struct {
	itemKey
	ID        string `dynamo:"id"`
	AppleSub  string `dynamo:"appleSub"`
	Email     string `dynamo:"email,omitempty"`
	CreatedAt int64  `dynamo:"createdAt"`
	UpdatedAt int64  `dynamo:"updatedAt"`
	DeletedAt int64  `dynamo:"deletedAt,omitempty"`
	TTL       int64  `dynamo:"ttl,omitempty"`
}

// ownerItem names the user who owns a unique thing: an Apple subject (PK
// APPLE#<sub>, SK APPLE), or a device token (PK TOKEN#<token>, SK OWNER).
// Its existence is what keeps the thing to one account.
type ownerItem struct {
	itemKey
	UserID string `dynamo:"userId"`
}

func (it userItem) user() ovrlrd.User {
	return ovrlrd.User{
		ID: it.ID, AppleSub: it.AppleSub, Email: it.Email,
		CreatedAt: timeOf(it.CreatedAt), UpdatedAt: timeOf(it.UpdatedAt),
	}
}

var errUserNotFound = ovrlrd.Errorf(ovrlrd.ENOTFOUND, "User not found.")

// ErrAccountDeleted is the cause of every error about an account whose
// deletion has begun.
var ErrAccountDeleted = errors.New("account deleted")

// errAccountDeleted answers a write of a deleted account as a revoked
// session is answered: the caller's credentials no longer name anyone.
var errAccountDeleted = ovrlrd.Wrap(ovrlrd.EUNAUTHORIZED, ovrlrd.MsgExpiredToken, ErrAccountDeleted)

// accountOpen is a transaction item that holds while userID's account is not
// being deleted. Every write that creates data for an account carries it, so
// deleting the account refuses them at once, on every instance, whatever
// sessions they still trust. An id without a profile passes: only an
// account that had a profile can have a caller, so catching its deletion is
// enough, and the tombstone outlives every session still trusted anywhere.
func (s *Store) accountOpen(userID string) *dynamo.ConditionCheck {
	return s.table.Check(attrPK, userPK(userID)).Range(attrSK, skProfile).If("attribute_not_exists($)", attrDeletedAt)
}

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
	id := uuid.NewString()
	it := userItem{itemKey: itemKey{userPK(id), skProfile}, ID: id, AppleSub: appleSub, Email: email, CreatedAt: now, UpdatedAt: now}
	claim := ownerItem{itemKey: itemKey{applePK(appleSub), skApple}, UserID: id}
	// A concurrent sign-in with the same subject conflicts; its outcome
	// decides ours, so runTx waits for it rather than guessing.
	err := s.runTx(ctx, "create user", func(error) (*dynamo.WriteTx, error) {
		return s.db.WriteTx().
			Put(s.table.Put(it).If("attribute_not_exists($)", attrPK)).
			Put(s.table.Put(claim).If("attribute_not_exists($)", attrPK)), nil
	}, nil, ovrlrd.Errorf(ovrlrd.ECONFLICT, "This Apple account is already registered."))
	if err != nil {
		return ovrlrd.User{}, err
	}
	return it.user(), nil
}

// UserByAppleSub returns the user who claimed appleSub.
func (s *Store) UserByAppleSub(ctx context.Context, appleSub string) (ovrlrd.User, error) {
	if appleSub == "" || len(appleSub) > maxAppleSub {
		return ovrlrd.User{}, errUserNotFound
	}
	var claim ownerItem
	if err := s.get(ctx, "get apple claim", applePK(appleSub), skApple, &claim, errUserNotFound); err != nil {
		return ovrlrd.User{}, err
	}
	return s.User(ctx, claim.UserID)
}

// User returns the user with id. An account being deleted is returned with
// an error whose cause is ErrAccountDeleted, so sign-in can finish the
// deletion; a finished one is not found.
func (s *Store) User(ctx context.Context, id string) (ovrlrd.User, error) {
	if !isID(id) {
		return ovrlrd.User{}, errUserNotFound
	}
	var it userItem
	if err := s.get(ctx, "get user", userPK(id), skProfile, &it, errUserNotFound); err != nil {
		return ovrlrd.User{}, err
	}
	switch {
	case it.TTL != 0:
		return ovrlrd.User{}, errUserNotFound
	case it.DeletedAt != 0:
		return it.user(), errAccountDeleted
	}
	return it.user(), nil
}
