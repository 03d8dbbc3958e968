// The session token the app holds is an
// HS256 JWT whose header names, in kid, the key of the config.KeyRing that
// signed it, so keys rotate without signing anyone out.
//
// Every failure is an *ovrlrd.Error with code EUNAUTHORIZED and one of the
// three messages the app's contract fixes; the reason stays in the wrapped
// cause, for logs only, and never quotes the token.
package auth

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// maxTokenBytes bounds what Verify parses. A token of ours is a few hundred
// bytes; anything far larger is refused before any decoding.
const maxTokenBytes = 4096

// alg is the one signing method issued and accepted.
var alg = jwt.SigningMethodHS256

// Claims is what a session token says.
type Claims struct {
	UserID     string // sub
	SessionID  string // sid: the login session
	Generation int    // gen: the session's rotation generation, from 1
	IssuedAt   time.Time
	ExpiresAt  time.Time
}

// wireClaims is the JWT payload. Times are whole epoch seconds, kept here
// rather than in jwt.NumericDate so that no package-level setting of the
// library changes what is signed.
type wireClaims struct {
	// Never called: the parser's own time validation is off, since Verify
	// checks expiry against its caller's clock and tolerance.
	jwt.Claims `json:"-"`

	Sub string `json:"sub,omitempty"`
	Sid string `json:"sid,omitempty"`
	Gen int    `json:"gen,omitempty"`
	Iat *int64 `json:"iat,omitempty"`
	Exp *int64 `json:"exp,omitempty"`
}

// Issuer signs and verifies session tokens with a key ring.
type Issuer struct {
	ring   config.KeyRing
	parser *jwt.Parser
}

// NewIssuer returns an Issuer over ring. The first key signs; every key
// verifies.
func NewIssuer(ring config.KeyRing) *Issuer {
	return &Issuer{
		ring: ring,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{alg.Alg()}),
			jwt.WithoutClaimsValidation(),
			// Refuses non-canonical base64, so one token has one spelling.
			jwt.WithStrictDecoding(),
		),
	}
}

// usable reports whether k can sign or verify: a kid, and a secret of at
// least the size config requires. An empty HMAC key would verify anything
// signed with an empty key.
func usable(k config.Key) bool {
	return k.ID != "" && len(k.Secret.Reveal()) >= config.MinKeyBytes
}

func signError(err error) error {
	return ovrlrd.Wrap(ovrlrd.EINTERNAL, "Internal server error", fmt.Errorf("sign session token: %w", err))
}

// Sign returns the token for c, signed with the ring's signing key. Times
// are truncated to whole seconds; a zero IssuedAt leaves iat out. Equal
// claims and key give the same token.
func (i *Issuer) Sign(c Claims) (string, error) {
	key := i.ring.Signing()
	switch {
	case !usable(key):
		return "", signError(errors.New("no usable signing key in the ring"))
	case c.UserID == "" || c.SessionID == "":
		return "", signError(errors.New("claims need a user and a session"))
	case c.Generation < 1:
		return "", signError(errors.New("claims need a generation of at least 1"))
	case c.ExpiresAt.IsZero():
		return "", signError(errors.New("claims need an expiry"))
	}
	w := wireClaims{Sub: c.UserID, Sid: c.SessionID, Gen: c.Generation, Exp: new(c.ExpiresAt.Unix())}
	if !c.IssuedAt.IsZero() {
		w.Iat = new(c.IssuedAt.Unix())
	}
	t := jwt.NewWithClaims(alg, w)
	t.Header["kid"] = key.ID
	s, err := t.SignedString([]byte(key.Secret.Reveal()))
	if err != nil {
		return "", signError(err)
	}
	return s, nil
}

func invalid(err error) error { return ovrlrd.Wrap(ovrlrd.EUNAUTHORIZED, ovrlrd.MsgExpiredToken, err) }

// Verify checks raw and returns its claims. The signature must be HS256 by
// a key of the ring named by the kid header; exp, sub, sid and a gen of at
// least 1 are required. expiredFor is how long after exp the token is still
// accepted: 0 on protected routes (exp must then be after now), the refresh
// grace on the refresh route. A token that verifies but has no sub is
// "Invalid token"; every other failure is "Invalid or expired token".
func (i *Issuer) Verify(raw string, now time.Time, expiredFor time.Duration) (Claims, error) {
	if len(raw) > maxTokenBytes {
		return Claims{}, invalid(fmt.Errorf("token is %d bytes, more than %d", len(raw), maxTokenBytes))
	}
	var w wireClaims
	if _, err := i.parser.ParseWithClaims(raw, &w, i.key); err != nil {
		return Claims{}, invalid(err)
	}
	if w.Exp == nil {
		return Claims{}, invalid(errors.New("token has no exp"))
	}
	exp := time.Unix(*w.Exp, 0).UTC()
	switch {
	case !now.Before(exp.Add(max(expiredFor, 0))):
		return Claims{}, invalid(fmt.Errorf("token expired at %s (tolerance %s)", exp.Format(time.RFC3339), max(expiredFor, 0)))
	case w.Sub == "":
		return Claims{}, ovrlrd.Wrap(ovrlrd.EUNAUTHORIZED, ovrlrd.MsgInvalidToken, errors.New("token has no sub"))
	case w.Sid == "":
		return Claims{}, invalid(errors.New("token has no sid"))
	case w.Gen < 1:
		return Claims{}, invalid(errors.New("token has no gen of at least 1"))
	}
	c := Claims{UserID: w.Sub, SessionID: w.Sid, Generation: w.Gen, ExpiresAt: exp}
	if w.Iat != nil {
		c.IssuedAt = time.Unix(*w.Iat, 0).UTC()
	}
	return c, nil
}

// key is the parser's Keyfunc: the ring's key named by the kid header.
func (i *Issuer) key(t *jwt.Token) (any, error) {
	// The parser already refused any other alg; this keeps the guarantee
	// here too, should its options ever change.
	if t.Method != alg {
		return nil, errors.New("signing method is not HS256")
	}
	kid, ok := t.Header["kid"].(string)
	if !ok || kid == "" {
		return nil, errors.New("token has no kid")
	}
	k, ok := i.ring.Lookup(kid)
	if !ok || !usable(k) {
		return nil, errors.New("unknown kid") // not quoted: it may be anything
	}
	return []byte(k.Secret.Reveal()), nil
}

// Bearer returns the token of an Authorization header value. The prefix
// must be exactly "Bearer " (capital B, one space: the one spelling the app
// sends) followed by a token that does not start with more whitespace.
func Bearer(header string) (string, error) {
	tok, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || tok == "" || strings.TrimLeft(tok, " \t\r\n") != tok {
		return "", ovrlrd.Wrap(ovrlrd.EUNAUTHORIZED, ovrlrd.MsgMissingHeader, errors.New("no Bearer token"))
	}
	return tok, nil
}
