package applefake

import (
	"cmp"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"maps"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Defaults for Claims.
const (
	Issuer   = "https://appleid.apple.com"
	Audience = "com.ovrlrd.app"
)

// Claims are an identity token's claims. Zero values take Apple's defaults:
// Issuer, Audience, iat now, exp ten minutes on. Empty Subject and Email and
// nil flags are left out.
type Claims struct {
	Subject, Email string
	EmailVerified  any // Apple sends true or "true"
	Audience       string
	Issuer         string
	ExpiresAt      time.Time
	IssuedAt       time.Time
	Extra          map[string]any // set last; a nil or "" value removes the claim
}

// Sign says how MintWith signs; the zero value signs as Mint does.
type Sign struct {
	Kid        string          // header kid; "" is the current key's
	NoKid      bool            // leave kid out of the header
	Key        *rsa.PrivateKey // RS256 with this key instead of the current one (a forgery)
	None       bool            // alg "none" with an empty signature
	HMACSecret []byte          // HS256 with this secret, e.g. PublicKeyPEM()
}

// Mint returns an RS256 token signed with the current key, kid set.
func (s *Server) Mint(c Claims) string { return s.MintWith(c, Sign{}) }

// MintWith returns a token signed as o says.
func (s *Server) MintWith(c Claims, o Sign) string {
	cur := s.current()
	method, key := jwt.SigningMethod(jwt.SigningMethodRS256), any(cmp.Or(o.Key, cur.priv))
	switch {
	case o.None:
		method, key = jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType
	case o.HMACSecret != nil:
		method, key = jwt.SigningMethodHS256, o.HMACSecret
	}
	t := jwt.NewWithClaims(method, c.mapClaims())
	if !o.NoKid {
		t.Header["kid"] = cmp.Or(o.Kid, cur.kid)
	}
	signed, err := t.SignedString(key)
	if err != nil {
		panic(err)
	}
	return signed
}

func (c Claims) mapClaims() jwt.MapClaims {
	now := time.Now()
	m := jwt.MapClaims{
		"iss": cmp.Or(c.Issuer, Issuer), "aud": cmp.Or(c.Audience, Audience),
		"iat": cmp.Or(c.IssuedAt, now).Unix(), "exp": cmp.Or(c.ExpiresAt, now.Add(10*time.Minute)).Unix(),
		"sub": c.Subject, "email": c.Email, "email_verified": c.EmailVerified,
	}
	maps.Copy(m, c.Extra)
	maps.DeleteFunc(m, func(_ string, v any) bool { return v == nil || v == "" })
	return m
}

// PublicKeyDER is the current key's public half as PKIX DER.
func (s *Server) PublicKeyDER() []byte {
	der, err := x509.MarshalPKIXPublicKey(&s.current().priv.PublicKey)
	if err != nil {
		panic(err)
	}
	return der
}

// PublicKeyPEM is the current key's public half as a PEM "PUBLIC KEY" block.
func (s *Server) PublicKeyPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: s.PublicKeyDER()})
}

// PublicKeyPKCS1PEM is the current key's public half as a PEM "RSA PUBLIC
// KEY" block.
func (s *Server) PublicKeyPKCS1PEM() []byte {
	der := x509.MarshalPKCS1PublicKey(&s.current().priv.PublicKey)
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: der})
}
