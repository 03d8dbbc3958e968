package api

import (
	"net/http"
	"regexp"

	"github.com/ovrlrd/cloud/internal/auth"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// authRoutes limits by address only where no user is known yet: sign-in.
// The others are limited by what the caller proves to hold, so nobody
// sharing an address can lock a user out of refreshing, signing out or
// deleting the account.
func (s *server) authRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /auth", s.byAddress(s.signIn))
	mux.HandleFunc("POST /auth/refresh", s.refresh)
	mux.HandleFunc("POST /auth/logout", s.authed(classLogout, s.logout))
	mux.HandleFunc("DELETE /auth/account", s.authed(classAccount, s.deleteAccount))
}

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
	}
	return nil
}

func (s *server) signIn(w http.ResponseWriter, r *http.Request) {
	var body signInBody
	if err := Decode(r, &body); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	g, err := s.auth.SignIn(r.Context(), auth.SignInRequest(body), client(r))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, g)
}

// refresh reads no body: the app sends Content-Type: application/json and
// nothing else. It is limited per session, counted once the token is known
// to be ours: checking one costs no I/O, so a forged token is refused before
// it could spend anyone's budget.
func (s *server) refresh(w http.ResponseWriter, r *http.Request) {
	t, err := s.auth.CheckRefresh(r.Context(), r.Header.Get("Authorization"), client(r))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if !s.allow(w, r, classRefresh, s.limits.Auth, t.SessionID(), t.UserID()) {
		return
	}
	g, err := s.auth.Rotate(r.Context(), t, client(r))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, g)
}

func (s *server) logout(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	if err := s.auth.Logout(r.Context(), p, client(r)); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) deleteAccount(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	if err := s.auth.DeleteAccount(r.Context(), p, client(r)); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
