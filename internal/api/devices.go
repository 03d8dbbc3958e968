package api

import (
	"context"
	"net/http"

	"github.com/ovrlrd/cloud/internal/auth"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// Devices is the push registration state.
type Devices interface {
	PutDevice(ctx context.Context, d ovrlrd.Device) error
	DeleteDevice(ctx context.Context, userID, token string) error
}

type deviceBody struct {
	DeviceToken *string             `json:"deviceToken"`
	Environment *ovrlrd.Environment `json:"environment"`
}

func (b *deviceBody) Validate() error {
	switch {
	case b.DeviceToken == nil:
		return ovrlrd.Errorf(ovrlrd.EINVALID, `Field "deviceToken" is required.`)
	case !deviceTokenPattern.MatchString(*b.DeviceToken):
		return ovrlrd.Errorf(ovrlrd.EINVALID, `Field "deviceToken" must be the device token in lowercase hex.`)
	case b.Environment != nil && !b.Environment.Valid():
		return ovrlrd.Errorf(ovrlrd.EINVALID, `Field "environment" must be "sandbox" or "production".`)
	}
	return nil
}

func (s *server) putDevice(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	var body deviceBody
	if s.failed(w, r, Decode(r, &body)) {
		return
	}
	// A device registered without one is in the configured environment.
	env := s.Auth.DeviceEnv
	if body.Environment != nil {
		env = *body.Environment
	}
	s.reply(w, r, s.Devices.PutDevice(r.Context(), ovrlrd.Device{UserID: p.UserID, Token: *body.DeviceToken, Environment: env}), nil)
}

// deleteDevice is sign-out on one phone. Deleting a token that is not
// registered succeeds too: the phone's wish is met either way. A token that
// could never have been registered is refused before it reaches the table,
// whose keys it might not even fit.
func (s *server) deleteDevice(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	tok := r.PathValue("token")
	if !deviceTokenPattern.MatchString(tok) {
		writeError(w, r, s.Log, ovrlrd.Errorf(ovrlrd.EINVALID, "The device token must be lowercase hex."))
		return
	}
	err := s.Devices.DeleteDevice(r.Context(), p.UserID, tok)
	if ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
		err = nil
	}
	s.reply(w, r, err, nil)
}
