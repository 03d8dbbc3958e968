package store

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/token"
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

// userItem is a user profile, PK USER#<id>, SK PROFILE. DeletedAt is set
// when the account's deletion begins and never cleared: from then on every
// write of the account is refused (see accountOpen). When the deletion ends
// the profile becomes a tombstone, with only DeletedAt and a TTL.
type userItem struct {
	PK        string `dynamo:"PK"`
	SK        string `dynamo:"SK"`
	ID        string `dynamo:"id"`
	AppleSub  string `dynamo:"appleSub"`
	Email     string `dynamo:"email,omitempty"`
	CreatedAt int64  `dynamo:"createdAt"`
	UpdatedAt int64  `dynamo:"updatedAt"`
	DeletedAt int64  `dynamo:"deletedAt,omitempty"`
	TTL       int64  `dynamo:"ttl,omitempty"`
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

// ErrAccountDeleted is the cause of every error about an account whose
// deletion has begun.
var ErrAccountDeleted = errors.New("account deleted")

// errAccountDeleted answers a write of a deleted account as a revoked
// session is answered: the caller's credentials no longer name anyone.
func errAccountDeleted() error {
	return ovrlrd.Wrap(ovrlrd.EUNAUTHORIZED, token.MsgInvalid, ErrAccountDeleted)
}

// attrDeletedAt marks a profile whose account is being deleted.
const attrDeletedAt = "deletedAt"

// accountOpen is a transaction item that holds while userID's account is not
// being deleted. Every write that creates data for an account carries it, so
// deleting the account refuses them at once, on every instance, whatever
// sessions they still trust. An id without a profile passes: only an
// account that had a profile can have a caller, so catching its deletion is
// enough, and the tombstone outlives every session still trusted anywhere.
func (s *Store) accountOpen(userID string) types.TransactWriteItem {
	return types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
		TableName: aws.String(s.table.Name()),
		Key: map[string]types.AttributeValue{
			attrPK: &types.AttributeValueMemberS{Value: userPK(userID)},
			attrSK: &types.AttributeValueMemberS{Value: skProfile},
		},
		ConditionExpression:      aws.String("attribute_not_exists(#d)"),
		ExpressionAttributeNames: map[string]string{"#d": attrDeletedAt},
	}}
}

// accountOpenCheck is accountOpen for a guregu transaction.
func (s *Store) accountOpenCheck(userID string) *dynamo.ConditionCheck {
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

// User returns the user with id. An account being deleted is returned with
// an error whose cause is ErrAccountDeleted, so sign-in can finish the
// deletion; a finished one is not found.
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
	switch {
	case it.TTL != 0:
		return ovrlrd.User{}, errUserNotFound()
	case it.DeletedAt != 0:
		return it.user(), errAccountDeleted()
	}
	return it.user(), nil
}
