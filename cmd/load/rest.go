package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/harness"
)

// The REST routes driven, in the order of the table.
const (
	rHealth = iota
	rListOne
	rList
	rGet
	rEvent
	rDevicePut
	rDeviceDelete
	rRefresh
	nRoutes
)

var routeNames = [nRoutes]string{
	rHealth:       "GET /health",
	rListOne:      "GET /chat?limit=1",
	rList:         "GET /chat",
	rGet:          "GET /chat/{id}",
	rEvent:        "POST /chat/{id}/events",
	rDevicePut:    "POST /devices",
	rDeviceDelete: "DELETE /devices/{token}",
	rRefresh:      "POST /auth/refresh",
}

// routeWeights is the mix: out of 100 requests. POST /auth/refresh is not
// drawn: it is paced by -refresh-every instead.
var routeWeights = [nRoutes]int{
	rHealth: 10, rListOne: 20, rList: 10, rGet: 20, rEvent: 10, rDevicePut: 15, rDeviceDelete: 15,
}

type routeStats struct {
	lat     harness.Histogram // every answered request (2xx and 429)
	ok      atomic.Int64
	limited atomic.Int64
	failed  atomic.Int64
}

// restLoad is the second load: workers sending a mix of REST requests as
// fast as they are answered, for a fixed time, with the default limits.
type restLoad struct {
	routes  [nRoutes]routeStats
	all     harness.Histogram // every answered request, all routes
	okOnly  harness.Histogram // 2xx only, all routes
	errs    *errorSet
	elapsed time.Duration

	nextRefresh atomic.Int64 // UnixNano of the next refresh due
	refreshes   atomic.Int64 // which user refreshes next
}

func newRestLoad() *restLoad { return &restLoad{errs: newErrorSet()} }

func (l *restLoad) run(ctx context.Context, o *options, c *harness.Client, users []*user) {
	start := time.Now()
	deadline := start.Add(o.duration)
	if o.refreshEvery > 0 {
		l.nextRefresh.Store(start.Add(o.refreshEvery / 2).UnixNano())
	}
	var wg sync.WaitGroup
	for w := range o.workers {
		rng := mrand.New(mrand.NewPCG(uint64(start.UnixNano()), uint64(w)))
		wg.Go(func() {
			// A request in flight when the time is up finishes; none starts.
			for ctx.Err() == nil && time.Now().Before(deadline) {
				if l.refreshDue(o) {
					u := users[int(l.refreshes.Add(1)-1)%len(users)]
					l.refresh(ctx, c, u)
					continue
				}
				l.one(ctx, c, users[rng.IntN(len(users))], pick(rng), rng)
			}
		})
	}
	wg.Wait()
	l.elapsed = time.Since(start)
	for i := range l.routes {
		l.all.Merge(&l.routes[i].lat)
	}
}

func pick(rng *mrand.Rand) int {
	n := rng.IntN(100)
	for r, w := range routeWeights {
		if n < w {
			return r
		}
		n -= w
	}
	return rHealth
}

// refreshDue claims the next refresh slot, at most one per -refresh-every.
func (l *restLoad) refreshDue(o *options) bool {
	if o.refreshEvery <= 0 {
		return false
	}
	next := l.nextRefresh.Load()
	now := time.Now().UnixNano()
	return now >= next && l.nextRefresh.CompareAndSwap(next, now+int64(o.refreshEvery))
}

// one sends one request of route r as user u.
func (l *restLoad) one(ctx context.Context, c *harness.Client, u *user, r int, rng *mrand.Rand) {
	method, path, body := http.MethodGet, "", ""
	convs := u.conversations()
	conv := url.PathEscape(convs[rng.IntN(len(convs))])
	var device string
	switch r {
	case rHealth:
		path = "/health"
	case rListOne:
		path = "/chat?limit=1"
	case rList:
		path = "/chat"
	case rGet:
		path = "/chat/" + conv
	case rEvent:
		method, path = http.MethodPost, "/chat/"+conv+"/events"
		body = `{"role":"system","content":"load test event"}`
	case rDevicePut:
		device = newDeviceToken()
		method, path = http.MethodPost, "/devices"
		body = `{"deviceToken":"` + device + `"}`
	case rDeviceDelete:
		// One this user registered, else one never registered (both 204).
		u.devMu.Lock()
		if n := len(u.devices); n > 0 {
			device, u.devices = u.devices[n-1], u.devices[:n-1]
		}
		u.devMu.Unlock()
		if device == "" {
			device = newDeviceToken()
		}
		method, path = http.MethodDelete, "/devices/"+device
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	u.mu.RLock()
	start := time.Now()
	status, resp, err := c.Call(rctx, method, path, body, u.token, false)
	lat := time.Since(start)
	u.mu.RUnlock()
	if l.record(r, status, resp, err, lat) && r == rDevicePut {
		u.devMu.Lock()
		if len(u.devices) < maxDevices {
			u.devices = append(u.devices, device)
		}
		u.devMu.Unlock()
	}
}

// refresh rotates u's session token. It holds u's lock for writing: the
// requests under way with the old token finish first, and none starts
// until the new token is in place.
func (l *restLoad) refresh(ctx context.Context, c *harness.Client, u *user) {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	u.mu.Lock()
	defer u.mu.Unlock()
	start := time.Now()
	status, body, err := c.Call(rctx, http.MethodPost, "/auth/refresh", "", u.token, true)
	lat := time.Since(start)
	if status == http.StatusOK {
		var g harness.Grant
		if jerr := json.Unmarshal(body, &g); jerr != nil || g.SessionToken == "" {
			status, err = 0, fmt.Errorf("unexpected body %.200s", body)
		} else {
			u.token = g.SessionToken
		}
	}
	l.record(rRefresh, status, body, err, lat)
}

// record counts one answer and reports whether it was a 2xx.
func (l *restLoad) record(r, status int, body []byte, err error, lat time.Duration) bool {
	s := &l.routes[r]
	switch {
	case err != nil && status == 0:
		kind := routeNames[r] + ": transport error"
		if errors.Is(err, context.DeadlineExceeded) {
			kind = routeNames[r] + ": timed out"
		}
		s.failed.Add(1)
		l.errs.add(kind, err.Error())
		return false
	case status == http.StatusTooManyRequests:
		s.limited.Add(1)
		s.lat.Add(lat)
		return false
	case status/100 != 2:
		s.failed.Add(1)
		l.errs.add(fmt.Sprintf("%s: HTTP %d", routeNames[r], status), string(body))
		return false
	case err != nil: // the body broke off
		s.failed.Add(1)
		l.errs.add(routeNames[r]+": body", err.Error())
		return false
	}
	s.ok.Add(1)
	s.lat.Add(lat)
	l.okOnly.Add(lat)
	return true
}

func newDeviceToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
