package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ovrlrd/cloud/internal/auth"
	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// user is one signed-in user. Requests hold mu for reading while under
// way; a refresh holds it for writing, so no request ever carries a token
// older than the one before the latest rotation (the service would take
// that for a copied token).
type user struct {
	mu    sync.RWMutex
	token string
	convs []string // set before the REST mix starts

	devMu   sync.Mutex
	devices []string // registered device tokens
}

// device is a new device token, registered as soon as it is sent (a delete
// racing its registration answers 204 too), or with del one of the user's,
// else one never registered.
func (u *user) device(del bool) string {
	u.devMu.Lock()
	defer u.devMu.Unlock()
	if n := len(u.devices); del && n > 0 {
		d := u.devices[n-1]
		u.devices = u.devices[:n-1]
		return d
	}
	d := fmt.Sprintf("%x", rand.Text()) // APNs tokens are hex
	if !del {
		u.devices = append(u.devices, d)
	}
	return d
}

// route is one route of the table, weight its share of 100 requests of
// the REST mix. In path and body, {id} is one of the user's conversations
// and {token} a device token.
type route struct {
	method, path, body string
	weight             int
}

func (rt route) name() string { return rt.method + " " + rt.path }

// routes are in the table's order: the turns (the first round opens a
// conversation, later rounds resume it), then the REST mix, whose last
// route, the refresh, is not drawn: o.refreshEvery paces it.
var routes = [...]route{
	{http.MethodPost, "/chat/stream", "", 0},
	{http.MethodPost, "/chat/{id}/stream", "", 0},
	{http.MethodGet, "/health", "", 10},
	{http.MethodGet, "/chat?limit=1", "", 20},
	{http.MethodGet, "/chat", "", 10},
	{http.MethodGet, "/chat/{id}", "", 20},
	{http.MethodPost, "/chat/{id}/events", `{"role":"system","content":"load test event"}`, 10},
	{http.MethodPost, "/devices", `{"deviceToken":"{token}"}`, 15},
	{http.MethodDelete, "/devices/{token}", "", 15},
	{http.MethodPost, "/auth/refresh", "", 0},
}

const (
	newTurn, resumedTurn, firstREST = 0, 1, 2
	refreshRoute                    = len(routes) - 1
)

type tally struct {
	lat                 samples // answered (2xx and 429); of a turn, to its end
	ok, limited, failed atomic.Int64
}

// load is the users' turns and requests, and what they met.
type load struct {
	s        *stack
	users    []*user
	tallies  [len(routes)]tally
	chunks   atomic.Int64
	examples sync.Map // the first answer of each route and kind that failed
}

// failure is the kind of a failed answer ("" for a success, "429" for
// the limit) and what it said.
func failure(status int, body []byte, err error) (kind, example string) {
	switch {
	case err != nil && status == 0:
		return "transport error", err.Error()
	case status == http.StatusTooManyRequests:
		return "429", ""
	case status/100 != 2:
		return fmt.Sprintf("HTTP %d", status), string(body)
	case err != nil:
		return "body broke off", err.Error()
	}
	return "", ""
}

// record counts one answer of routes[i], of the kind failure gives.
func (l *load) record(i int, kind, example string, lat time.Duration) {
	t := &l.tallies[i]
	switch kind {
	case "":
		t.ok.Add(1)
	case "429":
		t.limited.Add(1)
	default:
		t.failed.Add(1)
		example = strings.Join(strings.Fields(example), " ")
		l.examples.LoadOrStore(routes[i].name()+": "+kind, "e.g. "+example[:min(len(example), 160)])
		return
	}
	t.lat.add(lat)
}

func (l *load) failures() (out []string) {
	l.examples.Range(func(k, v any) bool {
		out = append(out, k.(string)+": "+v.(string))
		return true
	})
	return out
}

// streams runs turns workers, each rounds turns in a row on its own
// conversation, and gives the users the conversations opened.
func (l *load) streams(ctx context.Context, turns, rounds, events, rate int) {
	prompt := claudetest.Script("rate", "n", events, "rate", rate)
	convs := make([]string, turns)
	var wg sync.WaitGroup
	for i := range convs {
		// No refresh runs alongside the turns.
		token := l.users[i%len(l.users)].token
		wg.Go(func() {
			for range rounds {
				route, path := newTurn, "/chat/stream"
				if convs[i] != "" {
					route, path = resumedTurn, "/chat/"+convs[i]+"/stream"
				}
				r, err := l.s.Stream(ctx, path, prompt, token, nil, nil)
				l.chunks.Add(int64(r.Chunks))
				kind, example := failure(r.Status, nil, err)
				if kind == "" && r.Terminal != ovrlrd.OutcomeComplete {
					kind, example = "ended with "+string(r.Terminal), r.Message
				} else if kind == "" && r.Chunks != events {
					kind, example = "events lost", fmt.Sprintf("%d of %d chunks arrived", r.Chunks, events)
				}
				l.record(route, kind, example, r.End.Sub(r.Sent))
				if kind == "" && convs[i] == "" {
					convs[i] = r.ConvID
				}
			}
		})
	}
	wg.Wait()
	for i, conv := range convs {
		if u := l.users[i%len(l.users)]; conv != "" {
			u.convs = append(u.convs, conv)
		}
	}
}

// rest runs o.workers workers sending the mix as fast as it is answered,
// for o.duration, one of them refreshing a token when one is due.
func (l *load) rest(ctx context.Context, o *options) {
	start := time.Now()
	var nextRefresh, refreshes atomic.Int64 // UnixNano of the next refresh due; which user refreshes next
	nextRefresh.Store(start.Add(o.refreshEvery / 2).UnixNano())
	work(ctx, start, o.workers, o.duration, uint64(start.UnixNano()), func(rng *mrand.Rand) {
		next, now := nextRefresh.Load(), time.Now().UnixNano()
		if now >= next && nextRefresh.CompareAndSwap(next, now+int64(o.refreshEvery)) {
			l.one(ctx, l.users[int(refreshes.Add(1)-1)%len(l.users)], refreshRoute, rng)
			return
		}
		r, n := firstREST, rng.IntN(100)
		for ; n >= routes[r].weight; r++ {
			n -= routes[r].weight
		}
		l.one(ctx, l.users[rng.IntN(len(l.users))], r, rng)
	})
}

// work runs workers at once, each with a random source of its own, seeded
// with seed and its number; each calls send as soon as its previous call
// returned, until d has passed since start. A request in flight when the
// time is up finishes; none starts.
func work(ctx context.Context, start time.Time, workers int, d time.Duration, seed uint64, send func(*mrand.Rand)) {
	var wg sync.WaitGroup
	for w := range workers {
		rng := mrand.New(mrand.NewPCG(seed, uint64(w)))
		wg.Go(func() {
			for ctx.Err() == nil && time.Since(start) < d {
				send(rng)
			}
		})
	}
	wg.Wait()
}

// one sends a request of routes[i] as u.
func (l *load) one(ctx context.Context, u *user, i int, rng *mrand.Rand) {
	rt := routes[i]
	path, body := strings.Replace(rt.path, "{id}", url.PathEscape(u.convs[rng.IntN(len(u.convs))]), 1), rt.body
	if strings.Contains(path+body, "{token}") {
		device := u.device(rt.method == http.MethodDelete)
		path, body = strings.Replace(path, "{token}", device, 1), strings.Replace(body, "{token}", device, 1)
	}
	if i == refreshRoute {
		// The requests under way with the old token finish first, and none
		// starts until the new token is in place.
		u.mu.Lock()
		defer u.mu.Unlock()
	} else {
		u.mu.RLock()
		defer u.mu.RUnlock()
	}
	start := time.Now()
	status, answer, err := l.s.Call(ctx, rt.method, path, body, u.token)
	lat := time.Since(start)
	kind, example := failure(status, answer, err)
	var g auth.Grant
	if i == refreshRoute && kind == "" && (json.Unmarshal(answer, &g) != nil || g.SessionToken == "") {
		kind, example = "unexpected body", string(answer)
	} else if i == refreshRoute && kind == "" {
		u.token = g.SessionToken
	}
	l.record(i, kind, example, lat)
}

// setUp signs the users in and warms every path up, unmeasured: one short
// turn per user (which gives each user a conversation) and one request of
// each REST route but the refresh, which spends the address's small auth
// budget.
func (b *bench) setUp(ctx context.Context) ([]*user, error) {
	warm := &load{s: b.s, users: make([]*user, b.o.users)}
	for i := range warm.users {
		g, err := b.s.signIn(ctx, fmt.Sprintf("load.%d", i))
		if err != nil {
			return nil, err
		}
		warm.users[i] = &user{token: g.SessionToken}
	}
	warm.streams(ctx, len(warm.users), 1, 10, 1000)
	for i := firstREST; i < refreshRoute && len(warm.failures()) == 0; i++ {
		warm.one(ctx, warm.users[0], i, mrand.New(mrand.NewPCG(1, 2)))
	}
	if f := warm.failures(); len(f) > 0 {
		return nil, fmt.Errorf("warm-up: %v", f)
	}
	return warm.users, nil
}

// resources are what must come back after the load, with what the process
// may keep above the baseline once settled.
var resources = [...]struct {
	name   string
	slack  int64
	format func(int64) string
}{
	{"goroutines", 4, fmtCount},
	{"open file descriptors", 2, fmtCount},
	{"heap in use", 32 << 20, fmtMB},
}

func fmtCount(n int64) string { return strconv.FormatInt(n, 10) }

// quiesce closes every idle keep-alive connection, waits until the
// goroutine count has been steady for a few readings (at most 3 s), then
// collects garbage and reads the resources and the RSS.
func quiesce(s *stack) (held [len(resources)]int64, rss int64) {
	s.closeIdle()
	last, steady := -1, 0
	for deadline := time.Now().Add(3 * time.Second); steady < 3 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		if n := runtime.NumGoroutine(); n == last {
			steady++
		} else {
			last, steady = n, 0
		}
	}
	settle()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	// ReadDir's own descriptor is listed too, the same at every reading.
	fds, _ := os.ReadDir("/dev/fd")
	return [...]int64{int64(runtime.NumGoroutine()), int64(len(fds)), int64(m.HeapInuse)}, readMem("self").rss
}

// load runs the streamed turns, then the REST mix, and checks that the
// process let go of what they took; it returns the settings line.
func (b *bench) load(ctx context.Context) string {
	o := b.o
	settings := fmt.Sprintf("%d users, %d × %d turns of %d events @ %d/s, REST %d workers for %s, one refresh per %s",
		o.users, o.turns, o.rounds, o.events, o.rate, o.workers, o.duration, o.refreshEvery)
	users, err := b.setUp(ctx)
	if err != nil {
		b.set("set-up", "error: "+err.Error(), "", markError)
		return settings
	}
	l := &load{s: b.s, users: users}
	base, baseRSS := quiesce(b.s)
	peakOf := resetPeak("self")
	start := time.Now()
	l.streams(ctx, o.turns, o.rounds, o.events, o.rate)
	turnsTook, restStart := time.Since(start), time.Now()
	l.rest(ctx, o)
	restTook, peakRSS := time.Since(restStart), peakOf()

	back := func(held [len(resources)]int64) bool {
		for i, res := range resources {
			if held[i] > base[i]+res.slack {
				return false
			}
		}
		return true
	}
	settleStart := time.Now()
	after, afterRSS := quiesce(b.s)
	for ; !back(after) && time.Since(settleStart) < 10*time.Second; after, afterRSS = quiesce(b.s) {
		time.Sleep(200 * time.Millisecond)
	}

	completed, want := l.tallies[newTurn].ok.Load()+l.tallies[resumedTurn].ok.Load(), int64(o.turns*o.rounds)
	b.set("turns completed", fmt.Sprintf("%d of %d in %s (%.1f events/s)", completed, want, fmtMS(turnsTook),
		float64(l.chunks.Load())/turnsTook.Seconds()), "all", judge(completed == want, markError))
	for i, rt := range routes {
		t, took := &l.tallies[i], restTook
		if i < firstREST {
			took = turnsTook
		}
		ok, limited, failed := t.ok.Load(), t.limited.Load(), t.failed.Load()
		b.set(rt.name(), fmt.Sprintf("%d ok, %d 429, %d failed, %.1f/s; p50 %s, p99 %s, max %s", ok, limited, failed,
			float64(ok+limited+failed)/took.Seconds(), fmtMS(t.lat.at(0.5)), fmtMS(t.lat.at(0.99)), fmtMS(t.lat.at(1))),
			"0 failed", judge(failed == 0, markError))
	}
	for i, res := range resources {
		limit := base[i] + res.slack
		b.set(res.name, res.format(base[i])+" → "+res.format(after[i]), "≤ "+res.format(limit), judge(after[i] <= limit, markError))
	}
	b.set("RSS", fmt.Sprintf("%s → %s (peak %s)", fmtMB(baseRSS), fmtMB(afterRSS), fmtMB(peakRSS)), "", markInfo)
	for _, f := range l.failures() {
		b.notes = append(b.notes, "failed: "+f)
	}
	b.notes = append(b.notes, fmt.Sprintf("resources settled in %s", fmtMS(time.Since(settleStart))), loadNotes)
	return settings
}

const loadNotes = `Turns complete when they answer 200, end with "complete" and every chunk the fake wrote arrived. ` +
	`REST latency is to the last body byte of every answered request (2xx and 429: the default limits apply); any other status is a failure. ` +
	`Goroutines, descriptors and the heap are read after closing every idle keep-alive connection and a GC; the RSS peak is VmHWM.`
