package store

import (
	"context"
	"strings"
	"time"

	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// tombstoneRetention is how long a deleted account's tombstone refuses its
// writes. Only sessions an instance cached (at most a minute) and requests
// already past their check can still try, so a day is ample.
const tombstoneRetention = 24 * time.Hour

// tombstone is what remains of a deleted profile (SK PROFILE) or
// conversation (SK GONE#<id>) under its user: no personal data, only what
// keeps the account's writes refused, or lets the owner's retry of a
// conversation's delete finish it. It has no GSI1 keys, so no list shows it.
type tombstone struct {
	itemKey
	DeletedAt int64 `dynamo:"deletedAt"`
	TTL       int64 `dynamo:"ttl"`
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
		return nil, errUserNotFound
	}
	// Step 0 keeps the time of an earlier attempt. A missing profile or a
	// tombstone is ENOTFOUND.
	var prof userItem
	err = s.table.Update(attrPK, userPK(userID)).Range(attrSK, skProfile).
		SetExpr("$ = if_not_exists($, ?)", attrDeletedAt, attrDeletedAt, s.nowMillis()).
		If("attribute_exists($) AND attribute_not_exists($)", attrPK, attrTTL).
		Value(ctx, &prof)
	if err = written("close account", err, errUserNotFound); err != nil {
		return nil, err
	}
	deleted := []string{}
	if err := s.DeleteSessions(ctx, userID); err != nil {
		return deleted, err
	}
	// The conversations first, so that step 3 meets the tombstones their
	// deletes write; step 3 also catches a session or conversation that a
	// request in flight created since.
	for _, prefix := range []string{convPrefix, ""} {
		err := s.eachKeyPage(ctx, userPK(userID), prefix, func(keys []itemKey) error {
			rest := make([]itemKey, 0, len(keys))
			for _, k := range keys {
				if k.SK == skProfile {
					continue
				}
				if id, ok := strings.CutPrefix(k.SK, convPrefix); ok && isID(id) {
					// Its partition is swept first, while the conversation
					// item still exists: should this stop half way, a retry
					// still lists the conversation and finishes it.
					// DeleteConversation then removes the item and sweeps
					// again whatever an append in flight wrote meanwhile.
					if err := s.purge(ctx, convPrefix+id, ""); err != nil {
						return err
					}
					// ENOTFOUND: deleted meanwhile by the user, whose delete
					// sweeps the partition.
					if err := s.DeleteConversation(ctx, userID, id); err != nil && !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
						return err
					}
					deleted = append(deleted, id)
					continue
				}
				if id, ok := strings.CutPrefix(k.SK, gonePrefix); ok && isID(id) {
					if err := s.purge(ctx, convPrefix+id, ""); err != nil {
						return err
					}
				}
				if id, ok := pendingImport(k.SK); ok {
					// The messages an import that never finished wrote.
					if err := s.purge(ctx, convPrefix+id, ""); err != nil {
						return err
					}
				}
				if tok, ok := strings.CutPrefix(k.SK, devicePrefix); ok {
					// With its claim, so the phone is free for the next account.
					if err := s.DeleteDevice(ctx, userID, tok); err != nil && !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
						return err
					}
					continue
				}
				rest = append(rest, k)
			}
			return s.deleteKeys(ctx, rest)
		})
		if err != nil {
			return deleted, err
		}
	}
	return deleted, s.buryProfile(ctx, userID, prof)
}

// BeginDeleteUser marks userID's account as being deleted, which refuses
// every write of the account from this moment, on every instance (see
// accountOpen). DeleteUser does the rest. An account whose deletion has
// already begun, or ended, or no such user, is ENOTFOUND: the deletion was
// asked for before, and whoever began it finishes it.
func (s *Store) BeginDeleteUser(ctx context.Context, userID string) error {
	if !isID(userID) {
		return errUserNotFound
	}
	err := s.table.Update(attrPK, userPK(userID)).Range(attrSK, skProfile).
		Set(attrDeletedAt, s.nowMillis()).
		If("attribute_exists($) AND attribute_not_exists($)", attrPK, attrDeletedAt).
		Run(ctx)
	return written("begin account deletion", err, errUserNotFound)
}

// DeleteSessions deletes every login session of userID, so its tokens stop
// working wherever they are not cached.
func (s *Store) DeleteSessions(ctx context.Context, userID string) error {
	return s.purge(ctx, userPK(userID), sessionPrefix)
}

// buryProfile turns the marked profile into its tombstone and, in the same
// transaction, deletes the claim on its Apple subject if it is still this
// user's. A claim that is gone or that another user holds is left as it is.
// A tombstone already there means another DeleteUser got there first.
func (s *Store) buryProfile(ctx context.Context, userID string, prof userItem) error {
	put := s.table.Put(tombstone{
		itemKey: itemKey{userPK(userID), skProfile}, DeletedAt: prof.DeletedAt,
		TTL: s.now().Add(tombstoneRetention).Unix(),
	}).If("attribute_exists($) AND attribute_not_exists($)", attrPK, attrTTL)
	claim := s.table.Delete(attrPK, applePK(prof.AppleSub)).Range(attrSK, skApple).
		If("attribute_not_exists('PK') OR 'userId' = ?", userID)
	held := prof.AppleSub == "" || len(prof.AppleSub) > maxAppleSub
	return s.runTx(ctx, "delete user", func(prev error) (*dynamo.WriteTx, error) {
		tx := s.db.WriteTx().Put(put)
		// The claim's condition failed before: another user holds it.
		if held = held || conditionFailed(cancelReasons(prev), 1); !held {
			tx.Delete(claim)
		}
		return tx, nil
	}, errUserNotFound, errLostRace)
}

// eachKeyPage calls fn with the keys of partition pk whose sort key starts
// with prefix (all of them when prefix is empty), 500 at a time. It
// follows LastEvaluatedKey rather than querying again, so it ends even if
// fn deletes nothing or something keeps writing there.
func (s *Store) eachKeyPage(ctx context.Context, pk, prefix string, fn func([]itemKey) error) error {
	var start dynamo.PagingKey
	for {
		q := s.table.Get(attrPK, pk).Project(attrPK, attrSK).Consistent(true).SearchLimit(500).StartFrom(start)
		if prefix != "" {
			q.Range(attrSK, dynamo.BeginsWith, prefix)
		}
		var page []itemKey
		lek, err := q.AllWithLastEvaluatedKey(ctx, &page)
		if err != nil {
			return dbError("list partition items", err)
		}
		if err := fn(page); err != nil {
			return err
		}
		if len(lek) == 0 {
			return nil
		}
		start = lek
	}
}

// purge deletes the items of partition pk whose sort key starts with
// prefix; with no prefix, all of them: for a conversation, its messages and
// whatever else lives beside them (a run lease, turn outcomes).
func (s *Store) purge(ctx context.Context, pk, prefix string) error {
	return s.eachKeyPage(ctx, pk, prefix, func(keys []itemKey) error { return s.deleteKeys(ctx, keys) })
}

// deleteKeys deletes keys with BatchWriteItem, 25 to a request; guregu
// resends unprocessed items with backoff until they are written or ctx
// ends.
func (s *Store) deleteKeys(ctx context.Context, keys []itemKey) error {
	if len(keys) == 0 {
		return nil
	}
	keyed := make([]dynamo.Keyed, len(keys))
	for i, k := range keys {
		keyed[i] = dynamo.Keys{k.PK, k.SK}
	}
	_, err := s.table.Batch(attrPK, attrSK).Write().Delete(keyed...).Run(ctx)
	return written("delete items", err, nil)
}
