// Package apple verifies Sign in with Apple identity tokens against the keys
// Apple publishes as a JWK Set.
package apple

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

const (
	issuer = "https://appleid.apple.com"

	defaultLeeway  = time.Minute
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

	msgUnauthorized = "Authentication failed"
	msgUnavailable  = "Sign in with Apple is temporarily unavailable. Please try again."
)

// Identity is what a verified identity token says about the user.
type Identity struct {
	Subject        string
	Email          string
	EmailVerified  bool
	IsPrivateEmail bool
}

// Options configure a Verifier.
type Options struct {
	JWKSURL    string
	Audiences  []string      // configured bundle ids; a token's aud must be one of them
	Leeway     time.Duration // clock skew allowed on exp and iat; 60 s if zero
	HTTPClient *http.Client  // optional; the default times out after 3 s

	// Shortened by tests only.
	refreshEvery    time.Duration
	unknownKIDEvery time.Duration
}

// Verifier checks identity tokens. It is safe for concurrent use.
type Verifier struct {
	audiences []string
	leeway    time.Duration
	keys      *keySource
	cancel    context.CancelFunc
}

// NewVerifier returns a Verifier. It does no I/O: the keys are fetched on the
// first Verify, so an Apple outage during a cold start neither fails nor
// slows it, and heals on its own. ctx owns the background key refresh;
// cancel it or call Close to stop that.
func NewVerifier(ctx context.Context, opts Options) (*Verifier, error) {
	u, err := url.Parse(opts.JWKSURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("apple: JWKSURL must be an absolute http(s) URL")
	}
	if len(opts.Audiences) == 0 {
		return nil, errors.New("apple: no audiences configured")
	}
	for _, a := range opts.Audiences {
		if a == "" {
			return nil, errors.New("apple: empty audience configured")
		}
	}
	if opts.Leeway < 0 {
		return nil, fmt.Errorf("apple: negative leeway %v", opts.Leeway)
	}
	if opts.Leeway == 0 {
		opts.Leeway = defaultLeeway
	}
	client, timeout := opts.HTTPClient, defaultTimeout
	if client == nil {
		client = &http.Client{Timeout: defaultTimeout}
	} else if client.Timeout > 0 {
		timeout = client.Timeout
	}
	ctx, cancel := context.WithCancel(ctx)
	return &Verifier{
		audiences: append([]string(nil), opts.Audiences...),
		leeway:    opts.Leeway,
		keys: &keySource{
			ctx:             ctx,
			url:             opts.JWKSURL,
			client:          client,
			timeout:         timeout,
			refreshEvery:    orDefault(opts.refreshEvery, defaultRefreshEvery),
			unknownKIDEvery: orDefault(opts.unknownKIDEvery, defaultUnknownKIDEvery),
		},
		cancel: cancel,
	}, nil
}

// Close stops the background key refresh.
func (v *Verifier) Close() { v.cancel() }

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
		jwt.WithLeeway(v.leeway),
	)
	var c claims
	// The parser rejects malformed tokens and other algorithms before it asks
	// for a key, so those never cause a fetch and stay 401 during an outage.
	if _, err := p.ParseWithClaims(identityToken, &c, func(t *jwt.Token) (any, error) {
		return v.keys.key(ctx, t)
	}); err != nil {
		var o *outageError
		if errors.As(err, &o) {
			return Identity{}, ovrlrd.Wrap(ovrlrd.EUNAVAILABLE, msgUnavailable, err)
		}
		return Identity{}, unauthorized(err)
	}
	if c.Subject == "" {
		return Identity{}, unauthorized(errors.New("apple: token has no sub"))
	}
	return Identity{
		Subject:        c.Subject,
		Email:          c.Email,
		EmailVerified:  bool(c.EmailVerified),
		IsPrivateEmail: bool(c.IsPrivateEmail),
	}, nil
}

func unauthorized(cause error) error {
	return ovrlrd.Wrap(ovrlrd.EUNAUTHORIZED, msgUnauthorized, cause)
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
