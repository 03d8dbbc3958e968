package store_test

import (
	"context"
	"crypto/rand"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

func TestHitConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// A still clock keeps all 40 calls in one window.
	clock := newStepClock()
	s := clockedStore(clock)
	key := "login:ip/" + rand.Text() + "#+=é"
	const limit, calls = 10, 40

	decisions := make([]ovrlrd.RateDecision, calls)
	errs := make([]error, calls)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() { decisions[i], errs[i] = s.Hit(ctx, ovrlrd.RateLimit{Key: key, N: limit, Window: time.Minute}) })
	}
	wg.Wait()

	var remaining []int
	reset := clock.Now().Add(time.Minute) // the clock starts on a minute
	for i, d := range decisions {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if d.Limit != limit || !d.Reset.Equal(reset) {
			t.Fatalf("decision %+v, want limit %d and reset %v", d, limit, reset)
		}
		if d.Allowed {
			remaining = append(remaining, d.Remaining)
		} else if d.Remaining != 0 {
			t.Fatalf("denied with %d remaining", d.Remaining)
		}
	}
	slices.Sort(remaining)
	if want := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}; !slices.Equal(remaining, want) {
		t.Fatalf("allowed with remaining %v, want %v", remaining, want)
	}

	var raw struct {
		N   int   `dynamo:"n"`
		TTL int64 `dynamo:"ttl"`
	}
	rawGet(t, "RL#"+key+"#"+strconv.FormatInt(clock.Now().Unix(), 10), "RL", &raw)
	if raw.N != limit || raw.TTL != reset.Unix() {
		t.Fatalf("stored n=%d ttl=%d, want n=%d ttl=%d", raw.N, raw.TTL, limit, reset.Unix())
	}

	clock.Advance(time.Minute)
	d, err := s.Hit(ctx, ovrlrd.RateLimit{Key: key, N: limit, Window: time.Minute})
	if err != nil || !d.Allowed || d.Remaining != limit-1 {
		t.Fatalf("next window: %+v, %v", d, err)
	}
}

func TestHitKeysAreSeparate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := clockedStore(newStepClock())
	key := rand.Text()
	if d, err := s.Hit(ctx, ovrlrd.RateLimit{Key: key, N: 1, Window: time.Hour}); err != nil || !d.Allowed {
		t.Fatalf("first hit: %+v, %v", d, err)
	}
	if d, err := s.Hit(ctx, ovrlrd.RateLimit{Key: key, N: 1, Window: time.Hour}); err != nil || d.Allowed {
		t.Fatalf("second hit: %+v, %v; want denied", d, err)
	}
	if d, err := s.Hit(ctx, ovrlrd.RateLimit{Key: key + "#1", N: 1, Window: time.Hour}); err != nil || !d.Allowed {
		t.Fatalf("another key: %+v, %v", d, err)
	}
	_, err := s.Hit(ctx, ovrlrd.RateLimit{Key: key, N: 0, Window: time.Hour})
	expectCode(t, err, ovrlrd.EINVALID)
}
