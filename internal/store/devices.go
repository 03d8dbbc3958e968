package store

import (
	"context"
	"errors"
	"strings"

	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// deviceItem sits under its user, so listing a user's phones is one Query.
// A phone belongs to one account at a time: a claim item per token names its
// owner, and registering the token for another account moves it there, so a
// phone never gets the pushes of an account it has left.
type deviceItem struct {
	PK          string `dynamo:"PK,hash"`
	SK          string `dynamo:"SK,range"`
	Token       string `dynamo:"token"`
	Environment string `dynamo:"environment"`
	UpdatedAt   int64  `dynamo:"updatedAt"`
}

// deviceClaim names the account a token is registered to.
type deviceClaim struct {
	PK     string `dynamo:"PK,hash"`
	SK     string `dynamo:"SK,range"`
	UserID string `dynamo:"userId"`
}

func claimPK(token string) string { return "TOKEN#" + token }

const claimSK = "OWNER"

func devicePK(userID string) string { return "USER#" + userID }
func deviceSK(token string) string  { return "DEVICE#" + token }

func (it deviceItem) domain() ovrlrd.Device {
	return ovrlrd.Device{
		UserID:      strings.TrimPrefix(it.PK, "USER#"),
		Token:       it.Token,
		Environment: ovrlrd.Environment(it.Environment),
		UpdatedAt:   timeOf(it.UpdatedAt),
	}
}

// PutDevice registers a device for d.UserID, or refreshes its environment
// and updatedAt, and takes it away from any other account in the same
// transaction, which also requires d.UserID's account not to be being
// deleted.
func (s *Store) PutDevice(ctx context.Context, d ovrlrd.Device) error {
	if d.UserID == "" || d.Token == "" || !d.Environment.Valid() {
		return ovrlrd.Errorf(ovrlrd.EINVALID, "A device needs a user, a token and a known environment.")
	}
	for attempt := 0; ; attempt++ {
		var prev deviceClaim
		err := s.table.Get(attrPK, claimPK(d.Token)).Range(attrSK, dynamo.Equal, claimSK).Consistent(true).One(ctx, &prev)
		if err != nil && !errors.Is(err, dynamo.ErrNotFound) {
			return dbError("read device claim", err)
		}
		tx := s.db.WriteTx().Check(s.accountOpenCheck(d.UserID)).Put(s.table.Put(deviceItem{
			PK: devicePK(d.UserID), SK: deviceSK(d.Token),
			Token: d.Token, Environment: string(d.Environment), UpdatedAt: s.now().UnixMilli(),
		}))
		claim := s.table.Put(deviceClaim{PK: claimPK(d.Token), SK: claimSK, UserID: d.UserID})
		if prev.UserID == "" {
			claim = claim.If("attribute_not_exists('PK')")
		} else {
			claim = claim.If("'userId' = ?", prev.UserID)
		}
		tx = tx.Put(claim)
		if prev.UserID != "" && prev.UserID != d.UserID {
			tx = tx.Delete(s.table.Delete(attrPK, devicePK(prev.UserID)).Range(attrSK, deviceSK(d.Token)))
		}
		err = tx.Run(ctx)
		if err == nil {
			return nil
		}
		reasons := cancelReasons(err)
		if reasonCode(reasons, 0) == reasonCondition {
			return errAccountDeleted()
		}
		// Another registration of the same token moved the claim; read again.
		if reasons != nil && attempt < 4 {
			if perr := pause(ctx, attempt); perr != nil {
				return dbError("put device", perr)
			}
			continue
		}
		return dbError("put device", err)
	}
}

// Devices lists a user's devices; never nil, so it encodes as [].
func (s *Store) Devices(ctx context.Context, userID string) ([]ovrlrd.Device, error) {
	out := []ovrlrd.Device{}
	if userID == "" {
		return out, nil
	}
	var items []deviceItem
	err := s.table.Get(attrPK, devicePK(userID)).Range(attrSK, dynamo.BeginsWith, "DEVICE#").
		Consistent(true).All(ctx, &items)
	if err != nil {
		return nil, dbError("list devices", err)
	}
	for _, it := range items {
		out = append(out, it.domain())
	}
	return out, nil
}

// DeleteDevice removes a device. ENOTFOUND tells the caller it was not
// registered; a caller that only wants it gone can ignore that code.
func (s *Store) DeleteDevice(ctx context.Context, userID, token string) error {
	if userID == "" || token == "" {
		return ovrlrd.Errorf(ovrlrd.ENOTFOUND, "Device not found.")
	}
	err := s.db.WriteTx().
		Delete(s.table.Delete(attrPK, devicePK(userID)).Range(attrSK, deviceSK(token)).If("attribute_exists('PK')")).
		Delete(s.table.Delete(attrPK, claimPK(token)).Range(attrSK, claimSK).If("attribute_not_exists('PK') OR 'userId' = ?", userID)).
		Run(ctx)
	if reasons := cancelReasons(err); reasons != nil && reasonCode(reasons, 0) == reasonCondition {
		return ovrlrd.Errorf(ovrlrd.ENOTFOUND, "Device not found.")
	}
	if err != nil {
		return dbError("delete device", err)
	}
	return nil
}
