package store

import (
	"context"
	"errors"
	"strings"

	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// accountPageSize is how many keys one Query of an account's partition
// returns; their deletes then go out 25 to a BatchWriteItem.
const accountPageSize = 500

// itemKey is the primary key of any item.
type itemKey struct {
	PK string `dynamo:"PK"`
	SK string `dynamo:"SK"`
}

// DeleteUser deletes userID's account and everything stored for it, in an
// order that leaves a retry something to find until the very end:
//
//  1. every session, so the user's tokens stop working first;
//  2. every conversation with its whole CONV#<id> partition (messages, run
//     lease, anything else), through DeleteConversation;
//  3. devices (with their token claims) and any other item under USER#<uid>;
//  4. last, in one transaction, the profile and the Apple claim, so the
//     same Apple account can then sign up again as a new user.
//
// The profile is read first, for the Apple subject; without it the user
// does not exist and the answer is ENOTFOUND, so a finished deletion is
// ENOTFOUND the second time while a half-finished one (its profile still
// there) is completed. Audit events are left alone: they are the security
// trail and expire by TTL.
//
// It returns the ids of the conversations it deleted, so the caller can
// delete what it keeps for them elsewhere; on error, the ids deleted before
// the failure.
func (s *Store) DeleteUser(ctx context.Context, userID string) (deletedConversationIDs []string, err error) {
	if !isID(userID) {
		return nil, errUserNotFound()
	}
	var prof userItem
	err = s.table.Get(attrPK, userPK(userID)).Range(attrSK, dynamo.Equal, skProfile).
		Consistent(true).One(ctx, &prof)
	if errors.Is(err, dynamo.ErrNotFound) {
		return nil, errUserNotFound()
	}
	if err != nil {
		return nil, dbError("get user", err)
	}
	pk := userPK(userID)
	deleted := []string{}

	// 1. Sessions.
	err = s.eachKeyPage(ctx, pk, "SESSION#", func(keys []itemKey) error {
		return s.deleteKeys(ctx, keys, "delete sessions")
	})
	if err != nil {
		return deleted, err
	}

	// 2. Conversations.
	err = s.eachKeyPage(ctx, pk, convPrefix, func(keys []itemKey) error {
		for _, k := range keys {
			id := strings.TrimPrefix(k.SK, convPrefix)
			if !isID(id) {
				continue // not a conversation's key; step 3 deletes it
			}
			if err := s.deleteAccountConversation(ctx, userID, id); err != nil {
				return err
			}
			deleted = append(deleted, id)
		}
		return nil
	})
	if err != nil {
		return deleted, err
	}

	// 3. Everything else but the profile. A session or conversation that a
	// request in flight created since is caught here too.
	err = s.eachKeyPage(ctx, pk, "", func(keys []itemKey) error {
		rest := make([]itemKey, 0, len(keys))
		for _, k := range keys {
			if k.SK == skProfile {
				continue
			}
			if id, ok := strings.CutPrefix(k.SK, convPrefix); ok && isID(id) {
				if err := s.deleteAccountConversation(ctx, userID, id); err != nil {
					return err
				}
				deleted = append(deleted, id)
				continue
			}
			if tok, ok := strings.CutPrefix(k.SK, "DEVICE#"); ok {
				// With its claim, so the phone is free for the next account.
				if err := s.DeleteDevice(ctx, userID, tok); err != nil && !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
					return err
				}
				continue
			}
			rest = append(rest, k)
		}
		return s.deleteKeys(ctx, rest, "delete account items")
	})
	if err != nil {
		return deleted, err
	}

	// 4. The profile and the Apple claim.
	if err := s.deleteProfile(ctx, userID, prof.AppleSub); err != nil {
		return deleted, err
	}
	return deleted, nil
}

// deleteAccountConversation deletes one conversation of an account being
// deleted. Its partition is swept first, while the conversation item still
// exists: should this stop half way, a retry of DeleteUser still lists the
// conversation and finishes it. DeleteConversation then removes the item
// and sweeps again whatever an append in flight wrote meanwhile.
func (s *Store) deleteAccountConversation(ctx context.Context, userID, convID string) error {
	if err := s.purge(ctx, convPrefix+convID); err != nil {
		return err
	}
	err := s.DeleteConversation(ctx, userID, convID)
	if ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
		// Deleted meanwhile by the user; that delete sweeps the partition.
		return nil
	}
	return err
}

// deleteProfile deletes the profile and, in the same transaction, the
// claim on appleSub if it is still this user's. A claim that is gone or
// that another user holds is left as it is.
func (s *Store) deleteProfile(ctx context.Context, userID, appleSub string) error {
	profile := s.table.Delete(attrPK, userPK(userID)).Range(attrSK, skProfile).If("attribute_exists('PK')")
	withClaim := appleSub != "" && len(appleSub) <= maxAppleSub
	for attempt := 0; ; attempt++ {
		var err error
		if withClaim {
			claim := s.table.Delete(attrPK, applePK(appleSub)).Range(attrSK, skApple).
				If("attribute_not_exists('PK') OR 'userId' = ?", userID)
			err = s.db.WriteTx().Delete(profile).Delete(claim).Idempotent(true).Run(ctx)
		} else {
			err = profile.Run(ctx)
		}
		reasons := cancelReasons(err)
		switch {
		case err == nil:
			return nil
		case dynamo.IsCondCheckFailed(err) && !withClaim,
			reasonCode(reasons, 0) == reasonCondition:
			// Another DeleteUser got there first.
			return errUserNotFound()
		case reasonCode(reasons, 1) == reasonCondition:
			// The claim belongs to someone else: keep it, drop the profile.
			withClaim = false
			continue
		case retryable(reasons) && attempt+1 < txAttempts:
			if err := pause(ctx, attempt); err != nil {
				return dbError("delete user", err)
			}
		default:
			return dbError("delete user", err)
		}
	}
}

// eachKeyPage calls fn with the keys of partition pk whose sort key starts
// with prefix (all of them when prefix is empty), a page at a time. It
// follows LastEvaluatedKey rather than querying again, so it ends even if
// fn deletes nothing or something keeps writing there.
func (s *Store) eachKeyPage(ctx context.Context, pk, prefix string, fn func([]itemKey) error) error {
	var start dynamo.PagingKey
	for {
		q := s.table.Get(attrPK, pk).Project(attrPK, attrSK).Consistent(true).SearchLimit(accountPageSize)
		if prefix != "" {
			q.Range(attrSK, dynamo.BeginsWith, prefix)
		}
		if start != nil {
			q.StartFrom(start)
		}
		var page []itemKey
		lek, err := q.AllWithLastEvaluatedKey(ctx, &page)
		if err != nil {
			return dbError("list account items", err)
		}
		if len(page) > 0 {
			if err := fn(page); err != nil {
				return err
			}
		}
		if len(lek) == 0 {
			return nil
		}
		start = lek
	}
}

// deleteKeys deletes keys with BatchWriteItem, 25 to a request; guregu
// resends unprocessed items with backoff until they are written or ctx
// ends.
func (s *Store) deleteKeys(ctx context.Context, keys []itemKey, op string) error {
	if len(keys) == 0 {
		return nil
	}
	keyed := make([]dynamo.Keyed, len(keys))
	for i, k := range keys {
		keyed[i] = dynamo.Keys{k.PK, k.SK}
	}
	if _, err := s.table.Batch(attrPK, attrSK).Write().Delete(keyed...).Run(ctx); err != nil {
		return dbError(op, err)
	}
	return nil
}
