// Package apple verifies Sign in with Apple identity tokens against the keys
// Apple publishes as a JWK Set.
package apple

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

const (
	issuer = "https://appleid.apple.com"

	leeway         = time.Minute // clock skew allowed on exp and iat
	defaultTimeout = 3 * time.Second
	// Apple rotates keys rarely; the hourly refresh also drops revoked keys.
	defaultRefreshEvery = time.Hour
	// An unknown kid may be a rotation, so it may refresh the keys, but no
	// more than once per window: anyone can mint tokens with random kids.
	defaultUnknownKIDEvery = time.Minute
	// keyfunc's default of a minute would hold a request waiting for the
	// rate limiter; a second keeps a denied refresh a fast refusal.
	rateLimitWaitMax = time.Second
	// Apple's tokens are about a kilobyte; larger input is not worth parsing.
	maxTokenBytes = 8 << 10
	// MaxNonceBytes bounds the raw nonce a client sends with its token.
	MaxNonceBytes = 128
)

// Identity is what a verified identity token says about the user.
type Identity struct {
	Subject       string
	Email         string
	EmailVerified bool
}

// Options configure a Verifier.
type Options struct {
	JWKSURL    string
	Audiences  []string     // configured bundle ids; a token's aud must be one of them
	HTTPClient *http.Client // optional; the default times out after 3 s
	// ServicesIDs are the web's audiences (Sign in with Apple on the web),
	// accepted too. A token for one of them must carry the nonce: the page
	// sent Apple the SHA-256 of a random value only it knows, so a token
	// copied out of another page's sign-in is worthless without that value.
	ServicesIDs []string

	// Shortened by tests only.
	refreshEvery    time.Duration
	unknownKIDEvery time.Duration
}

// Verifier checks identity tokens. It is safe for concurrent use.
type Verifier struct {
	audiences   []string
	servicesIDs []string
	keys        *keySource
}

// NewVerifier returns a Verifier. It does no I/O: the keys are fetched on the
// first Verify, so an Apple outage during a cold start neither fails nor
// slows it, and heals on its own. The background key refresh ends with ctx.
func NewVerifier(ctx context.Context, opts Options) (*Verifier, error) {
	u, err := url.Parse(opts.JWKSURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("apple: JWKSURL must be an absolute http(s) URL")
	}
	// Without an audience the parser would accept any app's token.
	if len(opts.Audiences)+len(opts.ServicesIDs) == 0 || slices.Contains(opts.Audiences, "") || slices.Contains(opts.ServicesIDs, "") {
		return nil, errors.New("apple: no audiences, or an empty one, configured")
	}
	opts.HTTPClient = cmp.Or(opts.HTTPClient, &http.Client{Timeout: defaultTimeout})
	opts.refreshEvery = cmp.Or(opts.refreshEvery, defaultRefreshEvery)
	opts.unknownKIDEvery = cmp.Or(opts.unknownKIDEvery, defaultUnknownKIDEvery)
	return &Verifier{
		audiences:   slices.Concat(opts.Audiences, opts.ServicesIDs),
		servicesIDs: slices.Clone(opts.ServicesIDs),
		keys:        &keySource{ctx: ctx, Options: opts},
	}, nil
}

// Verify checks an identity token's signature and claims. nonce is the raw
// value whose SHA-256 (hex) the client asked Apple to put in the token: it
// is required for a Services ID's token, checked whenever it is given, and
// "" for the app, which sends none. A bad token is EUNAUTHORIZED; Apple's
// keys being unreachable when one is needed is EUNAVAILABLE. Neither
// error's message says anything about the token.
func (v *Verifier) Verify(ctx context.Context, identityToken, nonce string) (Identity, error) {
	if identityToken == "" || len(identityToken) > maxTokenBytes {
		return Identity{}, unauthorized(errors.New("apple: identity token empty or too long"))
	}
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(v.audiences...), // any one of them
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
	)
	var c claims
	// The parser rejects malformed tokens and other algorithms before it asks
	// for a key, so those never cause a fetch and stay 401 during an outage.
	if _, err := p.ParseWithClaims(identityToken, &c, func(t *jwt.Token) (any, error) {
		return v.keys.key(ctx, t)
	}); err != nil {
		if errors.Is(err, errOutage) {
			return Identity{}, ovrlrd.Wrap(ovrlrd.EUNAVAILABLE, "Sign in with Apple is temporarily unavailable. Please try again.", err)
		}
		return Identity{}, unauthorized(err)
	}
	if c.Subject == "" {
		return Identity{}, unauthorized(errors.New("apple: token has no sub"))
	}
	if (nonce != "" || v.forWeb(c.Audience)) && !nonceMatches(c.Nonce, nonce) {
		return Identity{}, unauthorized(errors.New("apple: nonce missing or not the one sent"))
	}
	return Identity{Subject: c.Subject, Email: c.Email, EmailVerified: bool(c.EmailVerified)}, nil
}

func unauthorized(cause error) error {
	return ovrlrd.Wrap(ovrlrd.EUNAUTHORIZED, "Authentication failed", cause)
}

// forWeb reports whether any of a token's audiences is a Services ID.
func (v *Verifier) forWeb(aud jwt.ClaimStrings) bool {
	return slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(v.servicesIDs, a) })
}

// nonceMatches reports whether claim is the SHA-256, in hex, of a raw
// nonce given. The hash is compared in constant time: how much of it
// matched must not show in the time the answer takes.
func nonceMatches(claim, raw string) bool {
	if raw == "" || len(raw) > MaxNonceBytes {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(claim), []byte(NonceHash(raw))) == 1
}

// NonceHash is what a client asks Apple to put in the token for the raw
// nonce it keeps: its SHA-256, in hex.
func NonceHash(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}
