package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// What the process may keep above the baseline after the loads, once
// settled, and how long settling may take.
const (
	goroutineSlack = 4
	fdSlack        = 2
	heapSlack      = 32 << 20
	settleFor      = 10 * time.Second
)

// user is one signed-in user. Requests hold mu for reading while under
// way; a refresh holds it for writing, so no request ever carries a token
// older than the one before the latest rotation (the service would take
// that for a copied token).
type user struct {
	mu    sync.RWMutex
	token string

	listMu  sync.Mutex
	convs   []string
	devices []string // registered device tokens, at most 16
}

func (u *user) addConv(id string) {
	u.listMu.Lock()
	defer u.listMu.Unlock()
	u.convs = append(u.convs, id)
}

// device is a new device token, registered as soon as it is sent (a delete
// racing its registration answers 204 too), or with del one of the user's,
// else one never registered.
func (u *user) device(del bool) string {
	u.listMu.Lock()
	defer u.listMu.Unlock()
	if n := len(u.devices); del && n > 0 {
		d := u.devices[n-1]
		u.devices = u.devices[:n-1]
		return d
	}
	d := randomHex(32)
	if !del && len(u.devices) < 16 {
		u.devices = append(u.devices, d)
	}
	return d
}

// route is one REST route of the mix, weight its share of 100 requests.
// In path and body, {id} is one of the user's conversations and {token} a
// device token.
type route struct {
	method, path, body string
	weight             int
}

func (rt route) name() string { return rt.method + " " + rt.path }

// routes are in the table's order. POST /auth/refresh, the last, is not
// drawn: -refresh-every paces it.
var routes = [...]route{
	{http.MethodGet, "/health", "", 10},
	{http.MethodGet, "/chat?limit=1", "", 20},
	{http.MethodGet, "/chat", "", 10},
	{http.MethodGet, "/chat/{id}", "", 20},
	{http.MethodPost, "/chat/{id}/events", `{"role":"system","content":"load test event"}`, 10},
	{http.MethodPost, "/devices", `{"deviceToken":"{token}"}`, 15},
	{http.MethodDelete, "/devices/{token}", "", 15},
	{http.MethodPost, "/auth/refresh", "", 0},
}

// Turns are tallied by their routes too: the first round opens a
// conversation, later rounds resume it.
var turnRoutes = [2]string{"POST /chat/stream", "POST /chat/{id}/stream"}

type tally struct {
	lat                 Histogram // answered (2xx and 429); of a turn, to its end
	ok, limited, failed atomic.Int64
}

type load struct {
	o       *options
	c       *Client
	users   []*user
	tallies map[string]*tally // by route; filled before the workers start
	chunks  atomic.Int64

	mu   sync.Mutex
	errs map[string]string // the first example, by route and kind

	nextRefresh atomic.Int64 // UnixNano of the next refresh due
	refreshes   atomic.Int64 // which user refreshes next
}

func newLoad(o *options, c *Client, users []*user) *load {
	l := &load{o: o, c: c, users: users, tallies: map[string]*tally{}, errs: map[string]string{}}
	for _, rt := range routes {
		l.tallies[rt.name()] = &tally{}
	}
	for _, name := range turnRoutes {
		l.tallies[name] = &tally{}
	}
	return l
}

// failure is the kind of a failed answer ("" for a success, "429" for
// the limit) and what it said.
func failure(status int, body []byte, err error) (kind, example string) {
	example = string(body)
	if err != nil {
		example = err.Error()
	}
	switch {
	case err != nil && status == 0 && errors.Is(err, context.DeadlineExceeded):
		return "timed out", example
	case err != nil && status == 0:
		return "transport error", example
	case status == http.StatusTooManyRequests:
		return "429", example
	case status/100 != 2:
		return fmt.Sprintf("HTTP %d", status), example
	case err != nil:
		return "body broke off", example
	}
	return "", ""
}

// record counts one answer of route, of the kind failure gives.
func (l *load) record(route, kind, example string, lat time.Duration) {
	t := l.tallies[route]
	switch kind {
	case "":
		t.ok.Add(1)
		t.lat.Add(lat)
	case "429":
		t.limited.Add(1)
		t.lat.Add(lat)
	default:
		t.failed.Add(1)
		example = strings.Join(strings.Fields(example), " ")
		l.mu.Lock()
		defer l.mu.Unlock()
		if k := route + ": " + kind; l.errs[k] == "" {
			l.errs[k] = "e.g. " + example[:min(len(example), 160)]
		}
	}
}

// streams runs -turns workers, each -rounds turns in a row on its own
// conversation.
func (l *load) streams(ctx context.Context) {
	o := l.o
	prompt := claudetest.Script("rate", "n", o.events, "rate", o.rate)
	perTurn := time.Minute + 3*time.Duration(float64(o.events)/float64(o.rate)*float64(time.Second))
	var wg sync.WaitGroup
	for i := range o.turns {
		u := l.users[i%len(l.users)]
		wg.Go(func() {
			conv := ""
			for range o.rounds {
				if ctx.Err() != nil {
					return
				}
				route, path := turnRoutes[0], "/chat/stream"
				if conv != "" {
					route, path = turnRoutes[1], "/chat/"+conv+"/stream"
				}
				tctx, cancel := context.WithTimeout(ctx, perTurn)
				// No refresh runs alongside the turns.
				r, err := l.c.Stream(tctx, path, prompt, u.token, nil, nil)
				cancel()
				l.chunks.Add(int64(r.Chunks))
				kind, example := failure(r.Status, nil, err)
				if kind == "" && r.Terminal != ovrlrd.OutcomeComplete {
					kind, example = "ended with "+string(r.Terminal), r.Message
				} else if kind == "" && r.Chunks != o.events {
					kind, example = "events lost", fmt.Sprintf("%d of %d chunks arrived", r.Chunks, o.events)
				}
				l.record(route, kind, example, r.End.Sub(r.Sent))
				if kind == "" && conv == "" {
					conv = r.ConvID
					u.addConv(conv)
				}
			}
		})
	}
	wg.Wait()
}

// rest runs -workers workers sending the mix as fast as it is answered,
// for -duration, one of them refreshing a token when one is due.
func (l *load) rest(ctx context.Context) {
	o, start := l.o, time.Now()
	l.nextRefresh.Store(start.Add(o.refreshEvery / 2).UnixNano())
	var wg sync.WaitGroup
	for w := range o.workers {
		rng := mrand.New(mrand.NewPCG(uint64(start.UnixNano()), uint64(w)))
		wg.Go(func() {
			// A request in flight when the time is up finishes; none starts.
			for ctx.Err() == nil && time.Since(start) < o.duration {
				next, now := l.nextRefresh.Load(), time.Now().UnixNano()
				if o.refreshEvery > 0 && now >= next && l.nextRefresh.CompareAndSwap(next, now+int64(o.refreshEvery)) {
					l.refresh(ctx, l.users[int(l.refreshes.Add(1)-1)%len(l.users)])
					continue
				}
				r, n := 0, rng.IntN(100)
				for ; n >= routes[r].weight; r++ {
					n -= routes[r].weight
				}
				l.one(ctx, l.users[rng.IntN(len(l.users))], routes[r], rng)
			}
		})
	}
	wg.Wait()
}

func (l *load) one(ctx context.Context, u *user, rt route, rng *mrand.Rand) {
	u.listMu.Lock()
	conv := url.PathEscape(u.convs[rng.IntN(len(u.convs))])
	u.listMu.Unlock()
	path, body := strings.Replace(rt.path, "{id}", conv, 1), rt.body
	if strings.Contains(path+body, "{token}") {
		device := u.device(rt.method == http.MethodDelete)
		path, body = strings.Replace(path, "{token}", device, 1), strings.Replace(body, "{token}", device, 1)
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	u.mu.RLock()
	defer u.mu.RUnlock()
	start := time.Now()
	status, resp, err := l.c.Call(rctx, rt.method, path, body, u.token, false)
	lat := time.Since(start)
	kind, example := failure(status, resp, err)
	l.record(rt.name(), kind, example, lat)
}

// refresh rotates u's session token, holding u's lock for writing: the
// requests under way with the old token finish first, and none starts
// until the new token is in place.
func (l *load) refresh(ctx context.Context, u *user) {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	u.mu.Lock()
	defer u.mu.Unlock()
	start := time.Now()
	status, body, err := l.c.Call(rctx, http.MethodPost, "/auth/refresh", "", u.token, true)
	lat := time.Since(start)
	kind, example := failure(status, body, err)
	var g Grant
	if kind == "" && (json.Unmarshal(body, &g) != nil || g.SessionToken == "") {
		kind = "unexpected body"
	} else if kind == "" {
		u.token = g.SessionToken
	}
	l.record(routes[len(routes)-1].name(), kind, example, lat)
}

// setUp signs the users in and warms every path up, unmeasured: one short
// turn per user (which gives each user a conversation) and one request of
// each REST route but the refresh, which spends the address's small auth
// budget.
func setUp(ctx context.Context, o *options, s *stack, c *Client) ([]*user, error) {
	users := make([]*user, o.users)
	for i := range users {
		g, err := s.signIn(ctx, c, fmt.Sprintf("load.%d", i))
		if err != nil {
			return nil, err
		}
		users[i] = &user{token: g.SessionToken}
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	warm := newLoad(&options{turns: len(users), rounds: 1, events: 10, rate: 1000}, c, users)
	warm.streams(wctx)
	if err := wctx.Err(); err != nil || len(warm.errs) > 0 {
		return nil, fmt.Errorf("warm-up: %v %v", err, warm.errs)
	}
	for _, rt := range routes[:len(routes)-1] {
		warm.one(wctx, users[0], rt, mrand.New(mrand.NewPCG(1, 2)))
	}
	if len(warm.errs) > 0 {
		return nil, fmt.Errorf("warm-up: %v", warm.errs)
	}
	return users, nil
}

// snapshot is what the process holds at one moment; fds -1 where there is
// no /proc.
type snapshot struct {
	goroutines, fds int
	heap, rss       int64
}

// quiesce closes every idle keep-alive connection, waits until the
// goroutine count has been steady for a few readings (at most 3 s), then
// collects garbage and takes a snapshot.
func quiesce(s *stack, c *Client) snapshot {
	c.HTTP.CloseIdleConnections()
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
	snap := snapshot{goroutines: runtime.NumGoroutine(), fds: -1, heap: heapInUse(), rss: readMem().rss}
	// ReadDir's own descriptor is listed too, the same at every reading.
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		snap.fds = len(ents)
	}
	return snap
}

// runLoad runs the streamed turns, then the REST mix, and checks that the
// process let go of what they took; it returns the settings line.
func runLoad(ctx context.Context, o *options, s *stack, c *Client, r *report) string {
	settings := fmt.Sprintf("%d users, %d × %d turns of %d events @ %d/s, REST %d workers for %s, one refresh per %s",
		o.users, o.turns, o.rounds, o.events, o.rate, o.workers, o.duration, o.refreshEvery)
	users, err := setUp(ctx, o, s, c)
	if err != nil {
		r.set("set-up", "error: "+err.Error(), "", markError)
		return settings
	}
	l := newLoad(o, c, users)
	base := quiesce(s, c)
	peakKnown := resetPeak()
	start := time.Now()
	l.streams(ctx)
	turnsTook, restStart := time.Since(start), time.Now()
	l.rest(ctx)
	restTook, peakRSS := time.Since(restStart), readMem().hwm

	limit := snapshot{goroutines: base.goroutines + goroutineSlack, fds: base.fds + fdSlack, heap: base.heap + heapSlack}
	ok := func(a snapshot) bool {
		return a.goroutines <= limit.goroutines && a.fds <= limit.fds && a.heap <= limit.heap
	}
	settleStart := time.Now()
	after := quiesce(s, c)
	for ; !ok(after) && time.Since(settleStart) < settleFor; after = quiesce(s, c) {
		time.Sleep(200 * time.Millisecond)
	}

	var completed int64
	for _, name := range turnRoutes {
		completed += l.tallies[name].ok.Load()
	}
	want := int64(o.turns * o.rounds)
	r.set("turns completed", fmt.Sprintf("%d of %d in %s (%.1f events/s)", completed, want, fmtMS(turnsTook),
		float64(l.chunks.Load())/turnsTook.Seconds()), "all", mark(completed == want))
	for _, name := range turnRoutes {
		r.set(name, l.tallies[name].summary(turnsTook), "0 failed", mark(l.tallies[name].failed.Load() == 0))
	}
	for _, rt := range routes {
		t := l.tallies[rt.name()]
		r.set(rt.name(), t.summary(restTook), "0 failed", mark(t.failed.Load() == 0))
	}
	r.set("goroutines", fmt.Sprintf("%d → %d", base.goroutines, after.goroutines), fmt.Sprintf("≤ %d", limit.goroutines),
		mark(after.goroutines <= limit.goroutines))
	r.set("open file descriptors", fmt.Sprintf("%d → %d", base.fds, after.fds), fmt.Sprintf("≤ %d", limit.fds), mark(after.fds <= limit.fds))
	r.set("heap in use", fmt.Sprintf("%s → %s", fmtMB(base.heap), fmtMB(after.heap)), "≤ "+fmtMB(limit.heap), mark(after.heap <= limit.heap))
	if !peakKnown {
		peakRSS = 0
	}
	r.set("RSS", fmt.Sprintf("%s → %s (peak %s)", fmtMB(base.rss), fmtMB(after.rss), fmtMB(peakRSS)), "", markInfo)
	for k, example := range l.errs {
		r.notes = append(r.notes, "failed: "+k+": "+example)
	}
	r.notes = append(r.notes, fmt.Sprintf("resources settled in %s", fmtMS(time.Since(settleStart))), loadNotes)
	return settings
}

// summary is a route's counts, rate over took and latencies.
func (t *tally) summary(took time.Duration) string {
	ok, limited, failed := t.ok.Load(), t.limited.Load(), t.failed.Load()
	return fmt.Sprintf("%d ok, %d 429, %d failed, %.1f/s; p50 %s, p99 %s, max %s", ok, limited, failed,
		float64(ok+limited+failed)/took.Seconds(), fmtMS(t.lat.Quantile(0.5)), fmtMS(t.lat.Quantile(0.99)), fmtMS(t.lat.Max()))
}

func mark(ok bool) string {
	if ok {
		return markPass
	}
	return markError
}

const loadNotes = `Turns complete when they answer 200, end with "complete" and every chunk the fake wrote arrived. ` +
	`REST latency is to the last body byte of every answered request (2xx and 429: the default limits apply); any other status is a failure. ` +
	`Goroutines, descriptors and the heap are read after closing every idle keep-alive connection and a GC; the RSS peak is VmHWM.`
