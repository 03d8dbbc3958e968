package store

import (
	"context"

	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// A device sits under its user (SK DEVICE#<token>), so listing a user's
// phones is one Query. A phone belongs to one account at a time: an
// ownerItem per token (PK TOKEN#<token>, SK OWNER) names its owner, and
// registering the token for another account moves it there, so a phone
// never gets the pushes of an account it has left.
const (
	devicePrefix = "DEVICE#"
	claimSK      = "OWNER"
)

type deviceItem struct {
	itemKey
	Token       string `dynamo:"token"`
	Environment string `dynamo:"environment"`
	UpdatedAt   int64  `dynamo:"updatedAt"`
}

func claimPK(token string) string { return "TOKEN#" + token }

var errNoDevice = ovrlrd.Errorf(ovrlrd.ENOTFOUND, "Device not found.")

// PutDevice registers a device for d.UserID, or refreshes its environment
// and updatedAt, and takes it away from any other account in the same
// transaction, which also requires d.UserID's account not to be being
// deleted.
func (s *Store) PutDevice(ctx context.Context, d ovrlrd.Device) error {
	if d.UserID == "" || d.Token == "" || !d.Environment.Valid() {
		return ovrlrd.Errorf(ovrlrd.EINVALID, "A device needs a user, a token and a known environment.")
	}
	item := deviceItem{
		itemKey: itemKey{userPK(d.UserID), devicePrefix + d.Token},
		Token:   d.Token, Environment: string(d.Environment), UpdatedAt: s.nowMillis(),
	}
	// The claim's condition fails when another registration of the same
	// token moved it since it was read: read it again.
	return s.runTx(ctx, "put device", func(error) (*dynamo.WriteTx, error) {
		var prev ownerItem
		if err := s.get(ctx, "read device claim", claimPK(d.Token), claimSK, &prev, nil); err != nil {
			return nil, err
		}
		claim := s.table.Put(ownerItem{itemKey: itemKey{claimPK(d.Token), claimSK}, UserID: d.UserID})
		if prev.UserID == "" {
			claim = claim.If("attribute_not_exists('PK')")
		} else {
			claim = claim.If("'userId' = ?", prev.UserID)
		}
		tx := s.db.WriteTx().Check(s.accountOpen(d.UserID)).Put(s.table.Put(item)).Put(claim)
		if prev.UserID != "" && prev.UserID != d.UserID {
			tx.Delete(s.table.Delete(attrPK, userPK(prev.UserID)).Range(attrSK, devicePrefix+d.Token))
		}
		return tx, nil
	}, errAccountDeleted, nil, errLostRace)
}

// Devices lists a user's devices; never nil, so it encodes as [].
func (s *Store) Devices(ctx context.Context, userID string) ([]ovrlrd.Device, error) {
	out := []ovrlrd.Device{}
	if userID == "" {
		return out, nil
	}
	var items []deviceItem
	err := s.table.Get(attrPK, userPK(userID)).Range(attrSK, dynamo.BeginsWith, devicePrefix).
		Consistent(true).All(ctx, &items)
	if err != nil {
		return nil, dbError("list devices", err)
	}
	for _, it := range items {
		out = append(out, ovrlrd.Device{
			UserID: userID, Token: it.Token,
			Environment: ovrlrd.Environment(it.Environment), UpdatedAt: timeOf(it.UpdatedAt),
		})
	}
	return out, nil
}

// DeleteDevice removes a device. ENOTFOUND tells the caller it was not
// registered; a caller that only wants it gone can ignore that code.
func (s *Store) DeleteDevice(ctx context.Context, userID, token string) error {
	if userID == "" || token == "" {
		return errNoDevice
	}
	return s.runTx(ctx, "delete device", func(error) (*dynamo.WriteTx, error) {
		return s.db.WriteTx().
			Delete(s.table.Delete(attrPK, userPK(userID)).Range(attrSK, devicePrefix+token).If("attribute_exists('PK')")).
			Delete(s.table.Delete(attrPK, claimPK(token)).Range(attrSK, claimSK).If("attribute_not_exists('PK') OR 'userId' = ?", userID)), nil
	}, errNoDevice)
}
