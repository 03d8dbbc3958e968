package auth_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ovrlrd/cloud/internal/auth"
	"github.com/ovrlrd/cloud/internal/devkit/applefake"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// An e-mail Apple did not mark verified never satisfies APPROVED_EMAILS: not
// at sign-up, not at a later sign-in, and not when the session is checked on
// a request or a refresh, even if an earlier policy let the account in.
func TestAllowListTrustsOnlyVerifiedEmail(t *testing.T) {
	ctx := context.Background()
	emailsOnly := auth.Policy{Emails: []string{"boss@example.com"}}
	for _, verified := range []any{false, "false", nil, true, "true"} {
		trusted := verified == true || verified == "true"
		t.Run(fmt.Sprint(verified), func(t *testing.T) {
			sub := uniq("013")
			// Let in by Apple id, with the listed address, verified or not.
			r := newRig(t, auth.Policy{AppleIDs: []string{sub}})
			mint := func() string {
				return r.apple.Mint(applefake.Claims{Subject: sub, Email: "Boss@Example.com", EmailVerified: verified})
			}
			g, err := r.svc.SignIn(ctx, auth.SignInRequest{IdentityToken: mint()}, client)
			if err != nil {
				t.Fatal(err)
			}
			// Then only the e-mail list is in force.
			later := r.instance(emailsOnly)
			_, authErr := later.Authenticate(ctx, bearer(g.SessionToken))
			_, refreshErr := later.Refresh(ctx, bearer(g.SessionToken), client)
			_, signInErr := later.SignIn(ctx, auth.SignInRequest{IdentityToken: mint()}, client)
			_, signUpErr := r.instance(emailsOnly).SignIn(ctx, auth.SignInRequest{IdentityToken: r.apple.Mint(
				applefake.Claims{Subject: uniq("013"), Email: "boss@example.com", EmailVerified: verified})}, client)
			if trusted {
				for what, err := range map[string]error{"request": authErr, "refresh": refreshErr, "sign-in": signInErr, "sign-up": signUpErr} {
					if err != nil {
						t.Errorf("%s with a verified listed e-mail: %v", what, err)
					}
				}
				return
			}
			expect(t, authErr, ovrlrd.EUNAUTHORIZED, "Invalid or expired token")
			expect(t, refreshErr, ovrlrd.EUNAUTHORIZED, "Token refresh failed")
			expect(t, signInErr, ovrlrd.EFORBIDDEN, "User not authorized")
			expect(t, signUpErr, ovrlrd.EFORBIDDEN, "User not authorized")
		})
	}
}
