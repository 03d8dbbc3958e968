package apple

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// outageError marks a key lookup that failed because the JWK Set could not be
// fetched, as opposed to a token naming a key Apple does not publish.
type outageError struct{ err error }

func (e *outageError) Error() string { return "apple: JWK Set unavailable: " + e.err.Error() }
func (e *outageError) Unwrap() error { return e.err }

// keySource builds the keyfunc on first use and rebuilds it until one
// initial fetch succeeds; after that keyfunc refreshes its own cache.
type keySource struct {
	ctx             context.Context
	url             string
	client          *http.Client
	timeout         time.Duration
	refreshEvery    time.Duration
	unknownKIDEvery time.Duration

	mu       sync.Mutex
	kf       keyfunc.Keyfunc
	stop     context.CancelFunc // kf's refresh goroutine; Close ends it through the parent
	building chan struct{}      // closed when the build in flight ends
	buildErr error

	health health
}

func (s *keySource) key(ctx context.Context, t *jwt.Token) (any, error) {
	if kid, _ := t.Header["kid"].(string); kid == "" {
		// keyfunc would try every key; Apple always names one.
		return nil, errors.New("apple: token header has no kid")
	}
	kf, err := s.keyfunc(ctx)
	if err != nil {
		return nil, &outageError{err}
	}
	key, err := kf.KeyfuncCtx(ctx)(t)
	if err != nil {
		// keyfunc reports an unknown kid alike whether its refresh found no
		// such key or could not fetch the set; the last refresh tells which.
		if last := s.health.get(); last != nil {
			return nil, &outageError{fmt.Errorf("%w; last refresh: %w", err, last)}
		}
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
	if s.kf != nil {
		return s.kf, nil
	}
	return nil, s.buildErr
}

// build runs once per attempt, bounded by the HTTP timeout.
func (s *keySource) build(done chan struct{}) {
	kf, stop, err := s.connect()
	s.mu.Lock()
	s.kf, s.stop, s.buildErr, s.building = kf, stop, err, nil
	s.mu.Unlock()
	close(done)
}

func (s *keySource) connect() (keyfunc.Keyfunc, context.CancelFunc, error) {
	ctx, cancel := context.WithCancel(s.ctx)
	remote, err := jwkset.NewStorageFromHTTP(s.url, jwkset.HTTPClientStorageOptions{
		Client:              s.client,
		Ctx:                 ctx,
		HTTPTimeout:         s.timeout,
		RefreshErrorHandler: func(_ context.Context, err error) { s.health.set(err) },
		RefreshInterval:     s.refreshEvery,
		Storage:             trackedStore{jwkset.NewMemoryStorage(), func() { s.health.set(nil) }},
	})
	if err != nil {
		cancel() // the refresh goroutine started before the fetch failed
		return nil, nil, err
	}
	store, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs:          map[string]jwkset.Storage{s.url: remote},
		RateLimitWaitMax:  rateLimitWaitMax,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(s.unknownKIDEvery), 1),
	})
	if err == nil {
		var kf keyfunc.Keyfunc
		if kf, err = keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: store}); err == nil {
			return kf, cancel, nil
		}
	}
	cancel()
	return nil, nil, err
}

// trackedStore notes each successful refresh: jwkset replaces the keys only
// once a fetched set has been fully read.
type trackedStore struct {
	*jwkset.MemoryJWKSet
	refreshed func()
}

func (t trackedStore) KeyReplaceAll(ctx context.Context, given []jwkset.JWK) error {
	if err := t.MemoryJWKSet.KeyReplaceAll(ctx, given); err != nil {
		return err
	}
	t.refreshed()
	return nil
}

// health is the outcome of the latest refresh: nil if it succeeded.
type health struct {
	mu  sync.Mutex
	err error
}

func (h *health) set(err error) {
	h.mu.Lock()
	h.err = err
	h.mu.Unlock()
}

func (h *health) get() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}
