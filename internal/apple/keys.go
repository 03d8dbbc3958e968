package apple

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// errOutage marks a key lookup that failed because the JWK Set could not be
// fetched, as opposed to a token naming a key Apple does not publish.
var errOutage = errors.New("apple: JWK Set unavailable")

// keySource builds the keyfunc on first use and rebuilds it until one
// initial fetch succeeds; after that keyfunc refreshes its own cache, until
// ctx ends.
type keySource struct {
	ctx     context.Context
	Options // defaults filled in; HTTPClient's Timeout bounds each fetch

	mu       sync.Mutex
	kf       keyfunc.Keyfunc
	building chan struct{} // closed when the build in flight ends
	buildErr error

	lastRefresh atomic.Pointer[error] // the latest refresh's outcome
}

func (s *keySource) key(ctx context.Context, t *jwt.Token) (any, error) {
	if kid, _ := t.Header["kid"].(string); kid == "" {
		// keyfunc would try every key; Apple always names one.
		return nil, errors.New("apple: token header has no kid")
	}
	kf, err := s.keyfunc(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errOutage, err)
	}
	key, err := kf.KeyfuncCtx(ctx)(t)
	// keyfunc reports an unknown kid alike whether its refresh found no such
	// key or could not fetch the set; the last refresh tells which.
	if last := s.lastRefresh.Load(); err != nil && last != nil && *last != nil {
		return nil, fmt.Errorf("%w: %w; last refresh: %w", errOutage, err, *last)
	}
	return key, err
}

// keyfunc returns the built keyfunc, joining or starting a build. Concurrent
// callers share one fetch; each waits no longer than its own ctx.
func (s *keySource) keyfunc(ctx context.Context) (keyfunc.Keyfunc, error) {
	s.mu.Lock()
	if s.kf != nil {
		defer s.mu.Unlock()
		return s.kf, nil
	}
	if s.building == nil {
		s.building = make(chan struct{})
		go s.build(s.building)
	}
	done := s.building
	s.mu.Unlock()

	select {
	case <-done:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// A build sets either kf or buildErr; once kf is set no build starts.
	return s.kf, s.buildErr
}

// build runs once per attempt, bounded by the HTTP timeout.
func (s *keySource) build(done chan struct{}) {
	kf, err := s.connect()
	s.mu.Lock()
	s.kf, s.buildErr, s.building = kf, err, nil
	s.mu.Unlock()
	close(done)
}

func (s *keySource) connect() (kf keyfunc.Keyfunc, err error) {
	ctx, cancel := context.WithCancel(s.ctx)
	defer func() {
		if err != nil {
			cancel() // the refresh goroutine may have started before the failure
		}
	}()
	remote, err := jwkset.NewStorageFromHTTP(s.JWKSURL, jwkset.HTTPClientStorageOptions{
		Client:              s.HTTPClient,
		Ctx:                 ctx,
		HTTPTimeout:         cmp.Or(s.HTTPClient.Timeout, defaultTimeout),
		RefreshErrorHandler: func(_ context.Context, err error) { s.lastRefresh.Store(&err) },
		RefreshInterval:     s.refreshEvery,
		Storage:             trackedStore{jwkset.NewMemoryStorage(), func() { s.lastRefresh.Store(nil) }},
	})
	if err != nil {
		return nil, err
	}
	store, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs:          map[string]jwkset.Storage{s.JWKSURL: remote},
		RateLimitWaitMax:  rateLimitWaitMax,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(s.unknownKIDEvery), 1),
	})
	if err != nil {
		return nil, err
	}
	return keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: store})
}

// trackedStore notes each successful refresh: jwkset replaces the keys only
// once a fetched set has been fully read.
type trackedStore struct {
	*jwkset.MemoryJWKSet
	refreshed func()
}

func (t trackedStore) KeyReplaceAll(ctx context.Context, given []jwkset.JWK) error {
	err := t.MemoryJWKSet.KeyReplaceAll(ctx, given)
	if err == nil {
		t.refreshed()
	}
	return err
}
