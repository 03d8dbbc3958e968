package apple

import "github.com/golang-jwt/jwt/v5"

type claims struct {
	jwt.RegisteredClaims
	Email         string   `json:"email"`
	EmailVerified flexBool `json:"email_verified"`
	// Nonce is what the client's authorization request named: on the web,
	// the SHA-256 of a value the page keeps.
	Nonce string `json:"nonce"`
}

// flexBool reads a JSON true or "true" as true, since Apple has sent both.
// Anything else is false rather than an error: a flag we cannot read is a
// flag we do not trust, but it is no reason to refuse the sign-in.
type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	s := string(data)
	*b = flexBool(s == "true" || s == `"true"`)
	return nil
}
