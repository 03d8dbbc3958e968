package store

import (
	"context"
	"strings"

	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// deviceItem sits under its user, so listing a user's phones is one Query.
// A token is keyed per user: the same phone signed in to another account is
// a separate item, and moving it away from the old account is the caller's
// decision.
type deviceItem struct {
	PK          string `dynamo:"PK,hash"`
	SK          string `dynamo:"SK,range"`
	Token       string `dynamo:"token"`
	Environment string `dynamo:"environment"`
	UpdatedAt   int64  `dynamo:"updatedAt"`
}

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

// PutDevice registers a device, or refreshes its environment and updatedAt.
func (s *Store) PutDevice(ctx context.Context, d ovrlrd.Device) error {
	if d.UserID == "" || d.Token == "" || !d.Environment.Valid() {
		return ovrlrd.Errorf(ovrlrd.EINVALID, "A device needs a user, a token and a known environment.")
	}
	it := deviceItem{
		PK: devicePK(d.UserID), SK: deviceSK(d.Token),
		Token: d.Token, Environment: string(d.Environment), UpdatedAt: s.now().UnixMilli(),
	}
	if err := s.table.Put(it).Run(ctx); err != nil {
		return dbError("put device", err)
	}
	return nil
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
	err := s.table.Delete(attrPK, devicePK(userID)).Range(attrSK, deviceSK(token)).
		If("attribute_exists('PK')").Run(ctx)
	if dynamo.IsCondCheckFailed(err) {
		return ovrlrd.Errorf(ovrlrd.ENOTFOUND, "Device not found.")
	}
	if err != nil {
		return dbError("delete device", err)
	}
	return nil
}
