// Package apple verifies Sign in with Apple identity tokens against the keys
// Apple publishes as a JWK Set.
package apple

import (
	"cmp"
	"context"
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

	// Shortened by tests only.
	refreshEvery    time.Duration
	unknownKIDEvery time.Duration
}

// Verifier checks identity tokens. It is safe for concurrent use.
type Verifier struct {
	audiences []string
	keys      *keySource
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
	if len(opts.Audiences) == 0 || slices.Contains(opts.Audiences, "") {
		return nil, errors.New("apple: no audiences, or an empty one, configured")
	}
	opts.HTTPClient = cmp.Or(opts.HTTPClient, &http.Client{Timeout: defaultTimeout})
	opts.refreshEvery = cmp.Or(opts.refreshEvery, defaultRefreshEvery)
	opts.unknownKIDEvery = cmp.Or(opts.unknownKIDEvery, defaultUnknownKIDEvery)
	return &Verifier{audiences: slices.Clone(opts.Audiences), keys: &keySource{ctx: ctx, Options: opts}}, nil
}

// Verify checks an identity token's signature and claims. A bad token is
// EUNAUTHORIZED; Apple's keys being unreachable when one is needed is
// EUNAVAILABLE. Neither error's message says anything about the token.
func (v *Verifier) Verify(ctx context.Context, identityToken string) (Identity, error) {
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
	return Identity{Subject: c.Subject, Email: c.Email, EmailVerified: bool(c.EmailVerified)}, nil
}

func unauthorized(cause error) error {
	return ovrlrd.Wrap(ovrlrd.EUNAUTHORIZED, "Authentication failed", cause)
}
