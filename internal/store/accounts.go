package store

import (
	"context"
	"strings"
	"time"

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

// tombstoneRetention is how long a deleted account's tombstone refuses its
// writes. Only sessions an instance cached (at most a minute) and requests
// already past their check can still try, so a day is ample.
const tombstoneRetention = 24 * time.Hour

// tombstone is what remains of a profile once its account is deleted: no
// personal data, only what keeps the account's writes refused.
type tombstone struct {
	PK        string `dynamo:"PK"`
	SK        string `dynamo:"SK"`
	DeletedAt int64  `dynamo:"deletedAt"`
	TTL       int64  `dynamo:"ttl"`
}

// DeleteUser deletes userID's account and everything stored for it:
//
//  0. the profile is marked deleted, which refuses every write of the
//     account from this moment, on every instance (see accountOpen);
//  1. every session, so the user's tokens stop working;
//  2. every conversation with its whole CONV#<id> partition (messages, run
//     lease, anything else), through DeleteConversation;
//  3. devices (with their token claims), the tombstones of conversations
//     the user deleted (each partition purged again first: that delete may
//     have stopped part way) and any other item under USER#<uid>;
//  4. last, in one transaction, the profile becomes a tombstone and the Apple
//     claim goes, so the same Apple account can then sign up again as a new
//     user.
//
// Until step 4 the marked profile and the claim are there, so a deletion
// that stopped half way is completed by the next call (the retries of the
// deletion's finisher make it, and so does a sign-in).
// A finished deletion, or no such user, is ENOTFOUND. Audit events are left
// alone: they are the security trail and expire by TTL.
//
// It returns the ids of the conversations it deleted, so the caller can
// delete what it keeps for them elsewhere; on error, the ids deleted before
// the failure.
func (s *Store) DeleteUser(ctx context.Context, userID string) (deletedConversationIDs []string, err error) {
	if !isID(userID) {
		return nil, errUserNotFound()
	}
	prof, err := s.closeAccount(ctx, userID)
	if err != nil {
		return nil, err
	}
	pk := userPK(userID)
	deleted := []string{}

	// 1. Sessions.
	if err := s.DeleteSessions(ctx, userID); err != nil {
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
			if id, ok := strings.CutPrefix(k.SK, gonePrefix); ok && isID(id) {
				if err := s.purge(ctx, convPrefix+id); err != nil {
					return err
				}
				rest = append(rest, k)
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

	// 4. The profile's tombstone and the Apple claim.
	if err := s.buryProfile(ctx, userID, prof); err != nil {
		return deleted, err
	}
	return deleted, nil
}

// BeginDeleteUser marks userID's account as being deleted, which refuses
// every write of the account from this moment, on every instance (see
// accountOpen). DeleteUser does the rest. An account whose deletion has
// already begun, or ended, or no such user, is ENOTFOUND: the deletion was
// asked for before, and whoever began it finishes it.
func (s *Store) BeginDeleteUser(ctx context.Context, userID string) error {
	if !isID(userID) {
		return errUserNotFound()
	}
	err := s.table.Update(attrPK, userPK(userID)).Range(attrSK, skProfile).
		Set(attrDeletedAt, s.nowMillis()).
		If("attribute_exists($) AND attribute_not_exists($)", attrPK, attrDeletedAt).
		Run(ctx)
	if dynamo.IsCondCheckFailed(err) {
		return errUserNotFound()
	}
	if err != nil {
		return dbError("begin account deletion", err)
	}
	return nil
}

// DeleteSessions deletes every login session of userID, so its tokens stop
// working wherever they are not cached.
func (s *Store) DeleteSessions(ctx context.Context, userID string) error {
	return s.eachKeyPage(ctx, userPK(userID), "SESSION#", func(keys []itemKey) error {
		return s.deleteKeys(ctx, keys, "delete sessions")
	})
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

// closeAccount marks userID's profile as being deleted, keeping the time
// of an earlier attempt, and returns it. A missing profile or a tombstone is
// ENOTFOUND.
func (s *Store) closeAccount(ctx context.Context, userID string) (userItem, error) {
	var prof userItem
	err := s.table.Update(attrPK, userPK(userID)).Range(attrSK, skProfile).
		SetExpr("$ = if_not_exists($, ?)", attrDeletedAt, attrDeletedAt, s.nowMillis()).
		If("attribute_exists($) AND attribute_not_exists($)", attrPK, attrTTL).
		Value(ctx, &prof)
	if dynamo.IsCondCheckFailed(err) {
		return userItem{}, errUserNotFound()
	}
	if err != nil {
		return userItem{}, dbError("close account", err)
	}
	return prof, nil
}

// buryProfile turns the marked profile into its tombstone and, in the same
// transaction, deletes the claim on its Apple subject if it is still this
// user's. A claim that is gone or that another user holds is left as it is.
func (s *Store) buryProfile(ctx context.Context, userID string, prof userItem) error {
	stone := tombstone{
		PK: userPK(userID), SK: skProfile, DeletedAt: prof.DeletedAt,
		TTL: ttlOf(s.now().Add(tombstoneRetention)),
	}
	put := s.table.Put(stone).If("attribute_exists($) AND attribute_not_exists($)", attrPK, attrTTL)
	withClaim := prof.AppleSub != "" && len(prof.AppleSub) <= maxAppleSub
	for attempt := 0; ; attempt++ {
		var err error
		if withClaim {
			claim := s.table.Delete(attrPK, applePK(prof.AppleSub)).Range(attrSK, skApple).
				If("attribute_not_exists('PK') OR 'userId' = ?", userID)
			err = s.db.WriteTx().Put(put).Delete(claim).Idempotent(true).Run(ctx)
		} else {
			err = put.Run(ctx)
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
			// The claim belongs to someone else: keep it, bury the profile.
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
