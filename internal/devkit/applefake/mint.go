package applefake

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
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
	IsPrivateEmail any
	Audience       string
	Issuer         string
	ExpiresAt      time.Time
	IssuedAt       time.Time
	OmitExp        bool
	Extra          map[string]any // set last; a nil value removes the claim
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
	var t *jwt.Token
	var key any
	switch {
	case o.None:
		t, key = jwt.NewWithClaims(jwt.SigningMethodNone, c.mapClaims()), jwt.UnsafeAllowNoneSignatureType
	case o.HMACSecret != nil:
		t, key = jwt.NewWithClaims(jwt.SigningMethodHS256, c.mapClaims()), o.HMACSecret
	default:
		key = cur.priv
		if o.Key != nil {
			key = o.Key
		}
		t = jwt.NewWithClaims(jwt.SigningMethodRS256, c.mapClaims())
	}
	switch {
	case o.NoKid:
	case o.Kid != "":
		t.Header["kid"] = o.Kid
	default:
		t.Header["kid"] = cur.kid
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
		"iss": or(c.Issuer, Issuer),
		"aud": or(c.Audience, Audience),
		"iat": orTime(c.IssuedAt, now).Unix(),
		"exp": orTime(c.ExpiresAt, now.Add(10*time.Minute)).Unix(),
	}
	if c.OmitExp {
		delete(m, "exp")
	}
	if c.Subject != "" {
		m["sub"] = c.Subject
	}
	if c.Email != "" {
		m["email"] = c.Email
	}
	if c.EmailVerified != nil {
		m["email_verified"] = c.EmailVerified
	}
	if c.IsPrivateEmail != nil {
		m["is_private_email"] = c.IsPrivateEmail
	}
	for k, v := range c.Extra {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
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

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func orTime(t, def time.Time) time.Time {
	if t.IsZero() {
		return def
	}
	return t
}
