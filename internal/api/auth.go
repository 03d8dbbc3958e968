package api

import (
	"context"
	"net/http"
	"regexp"

	"github.com/ovrlrd/cloud/internal/apple"
	"github.com/ovrlrd/cloud/internal/audit"
	"github.com/ovrlrd/cloud/internal/auth"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// signInBody is POST /auth's body.
type signInBody auth.SignInRequest

// deviceTokenPattern is an APNs device token as the app sends it: the
// token's bytes in lowercase hex (32 bytes today; Apple allows longer).
var deviceTokenPattern = regexp.MustCompile(`^(?:[0-9a-f]{2}){16,100}$`)

func (b *signInBody) Validate() error {
	switch {
	case b.IdentityToken == "":
		return ovrlrd.Errorf(ovrlrd.EINVALID, `Field "identityToken" is required.`)
	case len(b.IdentityToken) > 16<<10:
		return ovrlrd.Errorf(ovrlrd.EINVALID, `Field "identityToken" is too long.`)
	case b.DeviceToken != nil && !deviceTokenPattern.MatchString(*b.DeviceToken):
		return ovrlrd.Errorf(ovrlrd.EINVALID, `Field "deviceToken" must be the device token in lowercase hex.`)
	case b.DeviceID != nil && (*b.DeviceID == "" || len(*b.DeviceID) > 200):
		return ovrlrd.Errorf(ovrlrd.EINVALID, `Field "deviceId" must be 1 to 200 characters.`)
	case b.Nonce != nil && (*b.Nonce == "" || len(*b.Nonce) > apple.MaxNonceBytes):
		return ovrlrd.Errorf(ovrlrd.EINVALID, `Field "nonce" must be 1 to %d characters.`, apple.MaxNonceBytes)
	}
	return nil
}

// signIn is limited by client address, as no user is known yet; the
// address is hashed before it becomes a key.
func (s *server) signIn(w http.ResponseWriter, r *http.Request) {
	if !s.allow(w, r, "auth", s.Limits.Auth, s.Auth.Audit.HashIP(ClientIP(r)), "") {
		return
	}
	var body signInBody
	if s.failed(w, r, Decode(r, &body)) {
		return
	}
	g, err := s.Auth.SignIn(r.Context(), auth.SignInRequest(body), client(r))
	s.reply(w, r, err, g)
}

// refresh reads no body: the app sends Content-Type: application/json and
// nothing else. It is limited per session, counted once the token is known
// to be ours: checking one costs no I/O, so a forged token is refused before
// it could spend anyone's budget.
func (s *server) refresh(w http.ResponseWriter, r *http.Request) {
	t, err := s.Auth.CheckRefresh(r.Context(), r.Header.Get("Authorization"), client(r))
	if s.failed(w, r, err) || !s.allow(w, r, classRefresh, s.Limits.Auth, t.SessionID(), t.UserID()) {
		return
	}
	g, err := s.Auth.Rotate(r.Context(), t, client(r))
	s.reply(w, r, err, g)
}

// noContent is a route that acts on the caller's account and answers 204:
// sign-out and account deletion.
func (s *server) noContent(act func(context.Context, auth.Principal, audit.Client) error) principalHandler {
	return func(w http.ResponseWriter, r *http.Request, p auth.Principal) {
		s.reply(w, r, act(r.Context(), p, client(r)), nil)
	}
}
