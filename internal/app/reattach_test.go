package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"

	"github.com/ovrlrd/cloud/internal/app/chatfn"
	"github.com/ovrlrd/cloud/internal/devkit/anthropicfake"
	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/devkit/gateway"
	"github.com/ovrlrd/cloud/internal/devkit/ssetest"
	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/store"
)

// The tests in this file check resumable streams: every event a turn
// streams carries an id (turn.seq), the turn's events are logged, and
// GET /chat/{id}/stream gives a client that lost its stream the rest of
// them, after the Last-Event-ID (or ?after=) it sends, then follows the
// turn to its terminal event. What a client gets over any number of
// connections must be exactly what one uninterrupted stream would have
// given it: no gap, no duplicate, one terminal event, the app's framing.

// roomy lifts the reattach limit (RATE_LIMIT_TURN's numbers, 10 a minute
// by default, in a bucket of their own): these tests reconnect more often
// than that. TestReattachErrors checks the limit itself.
var roomy = []string{"RATE_LIMIT_TURN", "1000/1m"}

// retryLine begins every stream of the stream function.
const retryLine = "retry: 2000\n"

// appKeys are the keys of an event's JSON the app decodes: an event that
// gained an id must not have gained a key.
var appKeys = map[string]bool{"type": true, "content": true, "conversationId": true, "message": true,
	"toolName": true, "title": true, "denials": true}

// sseConn is a stream read as it arrives, with the app's rules, keeping
// each event's id line (which the app ignores and a reattaching client
// sends back) and every byte read.
type sseConn struct {
	resp *http.Response
	raw  bytes.Buffer // what was read of the body, for the rules of a whole stream
	rd   *ssetest.Reader
	what string
}

func newSSEConn(resp *http.Response, what string) *sseConn {
	c := &sseConn{resp: resp, what: what}
	c.rd = ssetest.NewReader(io.TeeReader(resp.Body, &c.raw))
	return c
}

// next returns the next event that has data; io.EOF at a clean end.
func (c *sseConn) next() (ssetest.Event, error) {
	data, err := c.rd.Next()
	if err != nil {
		return ssetest.Event{}, err
	}
	e, err := ssetest.DecodeData(string(data))
	if err != nil {
		return e, fmt.Errorf("%s: the app could not decode %q: %w", c.what, data, err)
	}
	e.ID = c.rd.ID()
	return e, nil
}

// rest reads the stream to its clean end.
func (c *sseConn) rest() ([]ssetest.Event, error) {
	var evs []ssetest.Event
	for {
		e, err := c.next()
		if errors.Is(err, io.EOF) {
			return evs, nil
		}
		if err != nil {
			return evs, fmt.Errorf("%s after %d events: %w", c.what, len(evs), err)
		}
		evs = append(evs, e)
	}
}

type restResult struct {
	evs []ssetest.Event
	err error
}

// restAsync is rest on a goroutine of its own, so several streams are read
// at once, as several devices would.
func (c *sseConn) restAsync() <-chan restResult {
	ch := make(chan restResult, 1)
	go func() {
		evs, err := c.rest()
		ch <- restResult{evs, err}
	}()
	return ch
}

// restAll reads the rest of every stream at once, as several devices
// would, and fails the test if any read fails.
func restAll(t *testing.T, conns ...*sseConn) []restResult {
	t.Helper()
	chs := make([]<-chan restResult, len(conns))
	for i, c := range conns {
		chs[i] = c.restAsync()
	}
	out := make([]restResult, len(conns))
	for i, ch := range chs {
		if out[i] = <-ch; out[i].err != nil {
			t.Fatal(out[i].err)
		}
	}
	return out
}

// until reads events until n events other than pings were read in all,
// counting from have, and returns them (pings included).
func (c *sseConn) until(t *testing.T, have []ssetest.Event, n int) []ssetest.Event {
	t.Helper()
	for got := len(nonPing(have)); got < n; {
		e, err := c.next()
		if err != nil {
			t.Fatalf("%s: %d events, waiting for %d: %v", c.what, got, n, err)
		}
		have = append(have, e)
		if e.Type != "ping" {
			got++
		}
	}
	return have
}

func (c *sseConn) close() { c.resp.Body.Close() }

// request sends what the app sends to the stream function, bounded by the
// test's hang guard, and returns the response unread. headers are name,
// value pairs; a name with the value "-" is left out (X-API-Key).
func (s *stack) request(t *testing.T, method, path, body, tok string, headers ...string) *http.Response {
	t.Helper()
	remember(tok)
	rememberJSON(body, true)
	req, err := http.NewRequestWithContext(hangGuard(t), method, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-API-Key", apiKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "-" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// startTurn posts a turn in conversation conv and returns its live stream,
// unread. A turn still running when the test ends is cancelled.
func (s *stack) startTurn(t *testing.T, conv, tok, body string) *sseConn {
	t.Helper()
	resp := s.request(t, "POST", "/chat/"+conv+"/stream", body, tok)
	t.Cleanup(func() {
		s.call(t, "POST", "/chat/"+conv+"/cancel", "", tok)
		resp.Body.Close()
	})
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("turn in %s: %d %s", conv, resp.StatusCode, b)
	}
	return newSSEConn(resp, "the live stream")
}

func message(m string) string { return `{"message":` + jsonString(m) + `}` }

// watchPath is the reattach route of conv, with ?after=id when query.
func watchPath(conv, id string, query bool) string {
	p := "/chat/" + conv + "/stream"
	if query && id != "" {
		p += "?after=" + url.QueryEscape(id)
	}
	return p
}

// watch reattaches to conv's turn after id ("" for the latest turn from its
// start), by the Last-Event-ID header or, with query, by ?after=, and
// returns the response unread.
func (s *stack) watch(t *testing.T, conv, tok, id string, query bool, headers ...string) *http.Response {
	t.Helper()
	if id != "" && !query {
		headers = append([]string{"Last-Event-ID", id}, headers...)
	}
	return s.request(t, "GET", watchPath(conv, id, query), "", tok, headers...)
}

// watchConn is watch for a stream that must open: 200 with an event
// stream's headers.
func (s *stack) watchConn(t *testing.T, conv, tok, id string, query bool) *sseConn {
	t.Helper()
	resp := s.watch(t, conv, tok, id, query)
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("reattach after %q (query %v): %d %s", id, query, resp.StatusCode, b)
	}
	if h := resp.Header; h.Get("Content-Type") != "text/event-stream" || h.Get("Cache-Control") != "no-cache" {
		t.Fatalf("reattach after %q: headers %v", id, h)
	}
	return newSSEConn(resp, "the stream reattached after "+strconv.Quote(id))
}

// watchAll reattaches and reads the whole answer.
func (s *stack) watchAll(t *testing.T, conv, tok, id string, query bool, headers ...string) response {
	t.Helper()
	resp := s.watch(t, conv, tok, id, query, headers...)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reattach after %q: %v", id, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// replay reattaches after id and returns the events of the whole stream,
// which must follow the app's rules and end with one terminal event.
func (s *stack) replay(t *testing.T, conv, tok, id string, query bool) []ssetest.Event {
	t.Helper()
	r := s.watchAll(t, conv, tok, id, query)
	if r.status != 200 {
		t.Fatalf("reattach after %q (query %v): %d %s", id, query, r.status, r.body)
	}
	evs := appRules(t, "the stream reattached after "+strconv.Quote(id), r.body)
	checkOneTerminal(t, evs)
	return evs
}

// turnBody runs a whole turn in conv over POST and returns its events,
// checked with the app's rules.
func (s *stack) turnBody(t *testing.T, conv, tok, body string) []ssetest.Event {
	t.Helper()
	c := s.startTurn(t, conv, tok, body)
	if _, err := c.rest(); err != nil {
		t.Fatal(err)
	}
	evs := appRules(t, "the live stream", c.raw.String())
	checkOneTerminal(t, evs)
	return evs
}

// appRules checks a whole stream as the iPhone app reads it, and what ids
// must not change about it, and returns its events: it decodes with the
// app's rules, holds no CR, begins with the retry line, and each event is
// one frame of an optional id line and one data line, exactly as before
// ids existed once the id line is taken away: no key the app does not
// know, type first. A ping has no id; every other event has one.
func appRules(t *testing.T, what, body string) []ssetest.Event {
	t.Helper()
	if strings.Contains(body, "\r") {
		t.Fatalf("%s: a CR in the stream", what)
	}
	evs, err := ssetest.Decode([]byte(body))
	if err != nil {
		t.Fatalf("%s: the app could not decode the stream: %v\n%.2000s", what, err, body)
	}
	rest, ok := strings.CutPrefix(body, retryLine)
	if !ok {
		t.Fatalf("%s: the stream does not begin with %q: %.200q", what, retryLine, body)
	}
	frames := strings.Split(rest, "\n\n")
	if frames[len(frames)-1] != "" {
		t.Fatalf("%s: the stream ends inside an event: %.200q", what, frames[len(frames)-1])
	}
	frames = frames[:len(frames)-1]
	if len(frames) != len(evs) {
		t.Fatalf("%s: %d frames, %d events", what, len(frames), len(evs))
	}
	for i, f := range frames {
		id, data := "", f
		if line, after, ok := strings.Cut(f, "\n"); ok && strings.HasPrefix(line, "id: ") {
			id, data = strings.TrimPrefix(line, "id: "), after
		}
		js, ok := strings.CutPrefix(data, "data: ")
		if !ok || strings.Contains(js, "\n") || id == "" && strings.Contains(f, "\n") {
			t.Fatalf("%s: frame %d is not an id line and one data line: %q", what, i, f)
		}
		e := evs[i]
		if js != e.Data || id != e.ID {
			t.Fatalf("%s: frame %d is %q, decoded as id %q data %q", what, i, f, e.ID, e.Data)
		}
		if (e.Type == "ping") != (id == "") {
			t.Fatalf("%s: event %d, a %s, has id %q: only pings have none", what, i, e.Type, id)
		}
		if e.Type == "ping" && js != `{"type":"ping"}` {
			t.Fatalf("%s: ping %q", what, js)
		}
		if !strings.HasPrefix(js, `{"type":`) {
			t.Fatalf("%s: event %d does not begin with its type: %q", what, i, js)
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(js), &obj); err != nil {
			t.Fatalf("%s: event %d: %v", what, i, err)
		}
		for k := range obj {
			if !appKeys[k] {
				t.Fatalf("%s: event %d has the key %q, which the app does not know: %s", what, i, k, js)
			}
		}
		if id != "" && strings.Contains(js, id) {
			t.Fatalf("%s: event %d carries its id in its data: %s", what, i, js)
		}
	}
	return evs
}

// nonPing is evs without its pings: the events a turn numbers and logs.
func nonPing(evs []ssetest.Event) []ssetest.Event {
	var out []ssetest.Event
	for _, e := range evs {
		if e.Type != "ping" {
			out = append(out, e)
		}
	}
	return out
}

// consecutive checks that evs (pings aside) carry the ids <turn>.first,
// <turn>.first+1, ... of one turn, and returns the turn's id.
func consecutive(t *testing.T, what string, evs []ssetest.Event, first int) string {
	t.Helper()
	evs = nonPing(evs)
	if len(evs) == 0 {
		t.Fatalf("%s: no events", what)
	}
	turn, _, _ := strings.Cut(evs[0].ID, ".")
	if turn == "" {
		t.Fatalf("%s: the first event has the id %q", what, evs[0].ID)
	}
	for i, e := range evs {
		if want := turn + "." + strconv.Itoa(first+i); e.ID != want {
			t.Fatalf("%s: event %d (%s) has the id %q, want %q: a gap, a duplicate or a reordering", what, i, e.Type, e.ID, want)
		}
	}
	return turn
}

// sameEvents checks that got (pings aside) are want's events, id and data.
func sameEvents(t *testing.T, what string, got, want []ssetest.Event) {
	t.Helper()
	got, want = nonPing(got), nonPing(want)
	for i := range min(len(got), len(want)) {
		if got[i].ID != want[i].ID || got[i].Data != want[i].Data {
			t.Fatalf("%s: event %d is %s %s, want %s %s", what, i, got[i].ID, got[i].Data, want[i].ID, want[i].Data)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d events, want %d", what, len(got), len(want))
	}
}

// timestamps checks the chunks of a flood or rate turn: n of them, each a
// whole wall-clock timestamp as the fake CLI writes them, none before the
// one before it.
func timestamps(t *testing.T, what string, evs []ssetest.Event, n int) {
	t.Helper()
	var prev int64
	count := 0
	for _, e := range evs {
		if e.Type != "chunk" {
			continue
		}
		ts, err := strconv.ParseInt(e.Content, 10, 64)
		if err != nil || len(e.Content) != 19 || ts < prev {
			t.Fatalf("%s: chunk %d is %q after %d", what, count, e.Content, prev)
		}
		prev = ts
		count++
	}
	if count != n {
		t.Fatalf("%s: %d chunks, want %d", what, count, n)
	}
}

// savedAnswerOf is the conversation's assistant messages, joined.
func (s *stack) savedAnswerOf(t *testing.T, conv, tok string) string {
	t.Helper()
	_, msgs, _ := appDetail(t, s.call(t, "GET", "/chat/"+conv+"?limit=100", "", tok))
	var b strings.Builder
	for _, m := range msgs {
		if m["role"] == "assistant" {
			b.WriteString(m["content"].(string))
		}
	}
	return b.String()
}

// A 2000-event turn read over many connections, each cut at a random
// point: the live stream first, then reattaching with the last id received,
// alternately by the header and by ?after=. Together they are the turn,
// exactly: the same events as one replay of the whole turn, numbered
// without a gap, the chunks all there in the order the CLI wrote them, one
// terminal event, and the answer that was saved.
func TestReattachRandomCuts(t *testing.T) {
	s := newStack(t, roomy...)
	tok, uid := s.signIn(t, uniqueSub("cuts"), "")
	c := newConversation(t, uid)

	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("REATTACH_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("seed %d (REATTACH_SEED=%d repeats these cuts)", seed, seed)
	rng := mrand.New(mrand.NewPCG(seed, 0x7265617474616368))
	const n, nCuts = 2000, 24
	cuts := map[int]bool{}
	for len(cuts) < nCuts {
		cuts[1+rng.IntN(n)] = true // after that many events (the terminal is event n+1)
	}
	points := slices.Sorted(func(yield func(int) bool) {
		for k := range cuts {
			if !yield(k) {
				return
			}
		}
	})

	conn := s.startTurn(t, c.ID, tok, message(claudetest.Script("rate", "n", n, "rate", 800)))
	var (
		got            []ssetest.Event
		byHeader, byQS int
	)
	for i, cut := range points {
		got = nonPing(conn.until(t, got, cut))
		conn.close()
		if strings.Contains(conn.raw.String(), "\r") {
			t.Fatalf("%s: a CR in the stream", conn.what)
		}
		if !strings.HasPrefix(conn.raw.String(), retryLine) {
			t.Fatalf("%s does not begin with the retry line: %.100q", conn.what, conn.raw.String())
		}
		query := i%2 == 1
		if query {
			byQS++
		} else {
			byHeader++
		}
		conn = s.watchConn(t, c.ID, tok, got[len(got)-1].ID, query)
	}
	last, err := conn.rest()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(conn.raw.String(), retryLine) {
		t.Fatalf("%s does not begin with the retry line", conn.what)
	}
	got = append(got, nonPing(last)...)
	t.Logf("%d events over %d connections (cut after %v; %d reattached by Last-Event-ID, %d by ?after=)",
		len(got), len(points)+1, points, byHeader, byQS)

	if end := checkOneTerminal(t, got); end.Type != "complete" || end.ConversationID != c.ID {
		t.Fatalf("terminal %+v", end)
	}
	consecutive(t, "the events over all connections", got, 1)
	timestamps(t, "the events over all connections", got, n)
	if len(got) != n+1 {
		t.Fatalf("%d events, want %d chunks and complete", len(got), n)
	}
	// One uninterrupted replay of the turn is the same.
	sameEvents(t, "the cut streams against a whole replay", got, s.replay(t, c.ID, tok, "", false))
	// And what was saved is what was streamed.
	if saved := s.savedAnswerOf(t, c.ID, tok); saved != chunks(got) {
		t.Fatalf("saved %d bytes, streamed %d", len(saved), len(chunks(got)))
	}
}

// After the turn ended: the rest up to the terminal event, then the end;
// nothing more once the terminal was delivered (204); without an id, the
// whole latest turn. A conversation that never ran a turn has nothing to
// follow (204), and an earlier turn's ids still give that turn's rest.
func TestReattachAfterTheTurnEnded(t *testing.T) {
	s := newStack(t, roomy...)
	tok, uid := s.signIn(t, uniqueSub("ended"), "")
	c := newConversation(t, uid)
	live := nonPing(s.turnBody(t, c.ID, tok, message(claudetest.Script("flood", "n", 100))))
	turn := consecutive(t, "the live stream", live, 1)
	if len(live) != 101 {
		t.Fatalf("%d events, want 100 chunks and complete", len(live))
	}
	last := live[len(live)-1]

	for _, query := range []bool{false, true} {
		for _, k := range []int{0, 1, 57, len(live) - 2} {
			got := s.replay(t, c.ID, tok, live[k].ID, query)
			sameEvents(t, fmt.Sprintf("after event %d (query %v)", k+1, query), got, live[k+1:])
		}
		// Every event was delivered: nothing to follow, an EventSource stops.
		if r := s.watchAll(t, c.ID, tok, last.ID, query); r.status != 204 || r.body != "" {
			t.Fatalf("after the terminal event (query %v): %d %q", query, r.status, r.body)
		}
	}
	// Without an id, or after 0, the whole turn.
	sameEvents(t, "without an id", s.replay(t, c.ID, tok, "", false), live)
	sameEvents(t, "after event 0", s.replay(t, c.ID, tok, turn+".0", false), live)

	// A second turn is the latest: without an id it is replayed; the first
	// turn's ids still give the first turn's rest.
	second := nonPing(s.turnBody(t, c.ID, tok, message(claudetest.Script("normal", "text", "the second turn"))))
	if turn2 := consecutive(t, "the second turn", second, 1); turn2 == turn {
		t.Fatalf("both turns have the id %s", turn)
	}
	sameEvents(t, "without an id after the second turn", s.replay(t, c.ID, tok, "", true), second)
	sameEvents(t, "the first turn's rest after the second turn", s.replay(t, c.ID, tok, live[57].ID, false), live[58:])
	if r := s.watchAll(t, c.ID, tok, last.ID, false); r.status != 204 || r.body != "" {
		t.Fatalf("after the first turn's terminal event: %d %q", r.status, r.body)
	}

	// No turn ever ran, though the app recorded a message: 204.
	fresh := newConversation(t, uid)
	if r := s.call(t, "POST", "/chat/"+fresh.ID+"/events", `{"role":"system","content":"✗ Denied: Bash"}`, tok); r.status != 200 {
		t.Fatalf("append: %d %s", r.status, r.body)
	}
	if r := s.watchAll(t, fresh.ID, tok, "", false); r.status != 204 || r.body != "" {
		t.Fatalf("a conversation that never ran a turn: %d %q", r.status, r.body)
	}
}

// Two watchers attached while the turn runs, one from the start and one
// after the tenth event, see what the turn's own stream sees.
func TestReattachTwoWatchersAndTheStream(t *testing.T) {
	s := newStack(t, roomy...)
	tok, uid := s.signIn(t, uniqueSub("watchers"), "")
	c := newConversation(t, uid)
	const n = 300
	live := s.startTurn(t, c.ID, tok, message(claudetest.Script("rate", "n", n, "rate", 150)))
	head := live.until(t, nil, 20)
	tenth := nonPing(head)[9]
	w1 := s.watchConn(t, c.ID, tok, "", false)
	w2 := s.watchConn(t, c.ID, tok, tenth.ID, false)
	all := restAll(t, live, w1, w2)
	stream := appRules(t, live.what, live.raw.String())
	sameEvents(t, "the live stream as read and as received", append(head, all[0].evs...), stream)
	consecutive(t, "the live stream", stream, 1)
	timestamps(t, "the live stream", stream, n)
	if end := checkOneTerminal(t, stream); end.Type != "complete" {
		t.Fatalf("terminal %+v", end)
	}
	sameEvents(t, "the watcher from the start", appRules(t, w1.what, w1.raw.String()), stream)
	sameEvents(t, "the watcher after the tenth event", appRules(t, w2.what, w2.raw.String()), nonPing(stream)[10:])
}

// The turn runs on one instance, and another instance, sharing only the
// table, serves the reattach: it shows the running turn, follows it, ends
// it with the turn's own terminal event when a cancel comes, and replays
// it afterwards.
func TestReattachOnAnotherInstance(t *testing.T) {
	a := newStack(t, roomy...)
	b := a.twin(t)
	tok, uid := a.signIn(t, uniqueSub("instances"), "")
	c := newConversation(t, uid)
	// A turn that runs until it is cancelled.
	live := a.startTurn(t, c.ID, tok, message(claudetest.Script("rate", "n", 1_000_000, "rate", 200)))
	head := live.until(t, nil, 10)
	turn, _, _ := strings.Cut(nonPing(head)[0].ID, ".")
	detail := b.call(t, "GET", "/chat/"+c.ID, "", tok)
	if active, _ := detail.json(t)["activeTurn"].(map[string]any); active == nil || active["id"] != turn {
		t.Fatalf("instance B's GET /chat/{id} while the turn runs on A: %s", detail.body)
	}
	w := b.watchConn(t, c.ID, tok, nonPing(head)[9].ID, true)
	followed := w.until(t, nil, 30) // B follows the running turn
	if r := b.call(t, "POST", "/chat/"+c.ID+"/cancel", "", tok); r.status != 200 {
		t.Fatalf("cancel on instance B: %d %s", r.status, r.body)
	}
	both := restAll(t, live, w)
	res0, res1 := both[0], both[1]
	stream := appRules(t, live.what, live.raw.String())
	sameEvents(t, "the live stream as read", append(head, res0.evs...), stream)
	consecutive(t, "the live stream", stream, 1)
	end := checkOneTerminal(t, stream)
	if end.Type != "error" || end.Message != "Cancelled" {
		t.Fatalf("terminal %+v", end)
	}
	seen := appRules(t, w.what, w.raw.String())
	sameEvents(t, "instance B's watcher as read", append(followed, res1.evs...), seen)
	sameEvents(t, "instance B's watcher", seen, nonPing(stream)[10:])
	// After the end, B replays the whole turn, and has nothing after it.
	sameEvents(t, "instance B's replay", b.replay(t, c.ID, tok, "", false), stream)
	if r := b.watchAll(t, c.ID, tok, end.ID, false); r.status != 204 {
		t.Fatalf("instance B after the terminal event: %d %s", r.status, r.body)
	}
}

// outage fails, unsent, every call of a DynamoDB client while down is set,
// and counts the calls it failed by operation.
type outage struct {
	down   atomic.Bool
	mu     sync.Mutex
	failed map[string]int
}

func (o *outage) option() func(*dynamodb.Options) {
	step := middleware.InitializeMiddlewareFunc("reattachTestOutage",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if o.down.Load() {
				o.mu.Lock()
				o.failed[awsmiddleware.GetOperationName(ctx)]++
				o.mu.Unlock()
				return middleware.InitializeOutput{}, middleware.Metadata{}, errors.New("injected outage: DynamoDB is unreachable")
			}
			return next.HandleInitialize(ctx, in)
		})
	return func(opts *dynamodb.Options) {
		opts.APIOptions = append(opts.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(step, middleware.Before)
		})
	}
}

func (o *outage) snapshot() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps.Clone(o.failed)
}

func (o *outage) count(op string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.failed[op]
}

// DynamoDB is unreachable from the instance running a turn for about two
// seconds. The turn's own stream goes on (it never waits for its log); its
// log catches up afterwards, so a watcher on another instance, attached
// during the outage, gets every event, in order, and the same terminal.
func TestReattachThroughADynamoDBOutage(t *testing.T) {
	out := &outage{failed: map[string]int{}}
	a := newStackWith(t, gateway.Options{DynamoDB: []func(*dynamodb.Options){out.option()}}, roomy...)
	b := a.twin(t) // its DynamoDB works
	t.Cleanup(func() { out.down.Store(false) })
	tok, uid := a.signIn(t, uniqueSub("outage"), "")
	c := newConversation(t, uid)

	// A turn that runs until it is cancelled, 200 texts a second.
	live := a.startTurn(t, c.ID, tok, message(claudetest.Script("rate", "n", 1_000_000, "rate", 200)))
	evs := live.until(t, nil, 40)
	before := nonPing(evs)[39]

	const (
		outageFor    = 2 * time.Second // the outage's definition
		duringOutage = 50              // events the live stream must get meanwhile
		afterOutage  = 100             // and after it, before the cancel
	)
	out.down.Store(true)
	over := time.After(outageFor)
	t.Logf("DynamoDB unreachable from instance A after event %s", before.ID)
	w := b.watchConn(t, c.ID, tok, before.ID, false)
	watched := w.restAsync()

	// The outage lasts its two seconds, and at least until the live stream
	// got duringOutage more events: a stream that waited for its log would
	// never get them, and the test would hang until its guard.
	got, timeUp := 0, false
	for out.down.Load() {
		e, err := live.next()
		if err != nil {
			t.Fatalf("the live stream during the outage, after %d events: %v", got, err)
		}
		evs = append(evs, e)
		if e.Type != "ping" {
			got++
		}
		select {
		case <-over:
			timeUp = true
		default:
		}
		if timeUp && got >= duringOutage {
			out.down.Store(false)
		}
	}
	if out.count("PutItem") == 0 {
		t.Fatalf("the turn's log was not written to during the outage: failed calls %v", out.snapshot())
	}
	t.Logf("the live stream got %d events while DynamoDB was unreachable; failed calls %v", got, out.snapshot())

	// Back: the turn goes on, then a cancel from instance B ends it.
	evs = live.until(t, evs, len(nonPing(evs))+afterOutage)
	if r := b.call(t, "POST", "/chat/"+c.ID+"/cancel", "", tok); r.status != 200 {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	rest, err := live.rest()
	if err != nil {
		t.Fatal(err)
	}
	evs = append(evs, rest...)
	stream := appRules(t, live.what, live.raw.String())
	sameEvents(t, "the live stream as read and as received", stream, evs)
	consecutive(t, "the live stream", stream, 1)
	end := checkOneTerminal(t, stream)
	if end.Type != "error" || end.Message != "Cancelled" {
		t.Fatalf("terminal %+v", end)
	}
	k := slices.IndexFunc(nonPing(stream), func(e ssetest.Event) bool { return e.ID == before.ID })

	r := <-watched
	if r.err != nil {
		t.Fatal(r.err)
	}
	sameEvents(t, "instance B's watcher, attached during the outage", appRules(t, w.what, w.raw.String()), nonPing(stream)[k+1:])
	sameEvents(t, "instance B's replay after the turn", b.replay(t, c.ID, tok, "", false), stream)
}

// The reattach route's refusals: a missing conversation and another user's
// answer the same 404, whatever id comes with it; an id of another
// conversation's turn, and an id this service never made, 400; the API
// key, the token and the origin secret as POST stream checks them; its own
// rate limit, with the 429's headers.
func TestReattachErrors(t *testing.T) {
	s := newStack(t, roomy...)
	tok, uid := s.signIn(t, uniqueSub("reattach-errors"), "")
	intruder, intruderID := s.signIn(t, uniqueSub("reattach-intruder"), "")
	mine := newConversation(t, uid)
	other := newConversation(t, uid)
	theirs := newConversation(t, intruderID)
	mineEvs := nonPing(s.turnBody(t, mine.ID, tok, message(claudetest.Script("normal", "text", "mine"))))
	otherEvs := nonPing(s.turnBody(t, other.ID, tok, message(claudetest.Script("normal", "text", "other"))))
	theirEvs := nonPing(s.turnBody(t, theirs.ID, intruder, message(claudetest.Script("normal", "text", "theirs"))))
	notFound := `{"error":"Conversation not found"}`

	// Missing and foreign: the same 404, with or without an id, by header
	// or query, even with the foreign conversation's own valid ids.
	missing := "6f1c0000-0000-4000-8000-000000000000"
	for _, k := range []struct {
		name, conv, id string
		query          bool
	}{
		{"missing", missing, "", false},
		{"missing, with an id", missing, mineEvs[0].ID, false},
		{"missing, with ?after=", missing, mineEvs[0].ID, true},
		{"foreign", theirs.ID, "", false},
		{"foreign, with its own id", theirs.ID, theirEvs[0].ID, false},
		{"foreign, with its own terminal's id by ?after=", theirs.ID, theirEvs[len(theirEvs)-1].ID, true},
		{"foreign, with a malformed id", theirs.ID, "garbage", false},
		{"not a conversation id", "not-a-uuid", "", false},
	} {
		if r := s.watchAll(t, k.conv, tok, k.id, k.query); r.status != 404 || r.body != notFound {
			t.Errorf("%s: %d %s", k.name, r.status, r.body)
		}
	}

	// Another conversation's turn: 400, by header and by query, whether
	// the id is one of its events, its terminal, or past it.
	otherTurn, _, _ := strings.Cut(otherEvs[0].ID, ".")
	for _, id := range []string{otherEvs[0].ID, otherEvs[len(otherEvs)-1].ID, otherTurn + ".0", otherTurn + ".99"} {
		for _, query := range []bool{false, true} {
			r := s.watchAll(t, mine.ID, tok, id, query)
			if r.status != 400 || errorOf(t, r) == "" {
				t.Errorf("another conversation's turn's id %s (query %v): %d %s", id, query, r.status, r.body)
			}
		}
	}
	// The same ids in a conversation that never ran a turn.
	fresh := newConversation(t, uid)
	if r := s.watchAll(t, fresh.ID, tok, otherEvs[0].ID, false); r.status != 400 {
		t.Errorf("another conversation's turn's id, in a conversation without turns: %d %s", r.status, r.body)
	}
	// Malformed ids: 400.
	mineTurn, _, _ := strings.Cut(mineEvs[0].ID, ".")
	for _, id := range []string{"garbage", mineTurn, mineTurn + ".", "." + "1", mineTurn + ".01", mineTurn + ".-1",
		mineTurn + ".1.2", mineTurn + ".+1", mineTurn + ". 1", "TURN#X.1", "a/b.1", strings.Repeat("A", 65) + ".1",
		mineTurn + ".99999999999999999999999"} {
		for _, query := range []bool{false, true} {
			if r := s.watchAll(t, mine.ID, tok, id, query); r.status != 400 || errorOf(t, r) == "" {
				t.Errorf("malformed id %q (query %v): %d %s", id, query, r.status, r.body)
			}
		}
	}

	// The API key and the token: what POST stream answers.
	revoked, _ := s.signIn(t, uniqueSub("reattach-revoked"), "")
	if r := s.call(t, "POST", "/auth/logout", "", revoked); r.status != 204 {
		t.Fatalf("logout: %d", r.status)
	}
	for _, k := range []struct {
		name, tok string
		headers   []string
	}{
		{"no API key", tok, []string{"X-API-Key", "-"}},
		{"a wrong API key", tok, []string{"X-API-Key", "wrong-api-key-0123456789"}},
		{"no token", "", nil},
		{"a malformed token", "not-a-jwt", nil},
		{"a revoked token", revoked, nil},
	} {
		post := s.request(t, "POST", "/chat/"+mine.ID+"/stream", message("hi"), k.tok, k.headers...)
		want, _ := io.ReadAll(post.Body)
		post.Body.Close()
		r := s.watchAll(t, mine.ID, k.tok, mineEvs[0].ID, false, k.headers...)
		if post.StatusCode != 401 || r.status != post.StatusCode || r.body != string(want) {
			t.Errorf("%s: GET %d %s, POST %d %s", k.name, r.status, r.body, post.StatusCode, want)
		}
	}

	// The origin secret.
	guarded := newStack(t, append([]string{"ORIGIN_SECRET", "from-cloudfront-0123456789"}, roomy...)...)
	gtok, guid := guarded.signIn(t, uniqueSub("reattach-origin"), "")
	gc := newConversation(t, guid)
	for _, secret := range []string{"-", "wrong"} {
		if r := guarded.watchAll(t, gc.ID, gtok, "", false, "X-Origin-Secret", secret); r.status != 403 || r.body != `{"error":"Forbidden"}` {
			t.Errorf("origin secret %q: %d %s", secret, r.status, r.body)
		}
	}
	if r := guarded.watchAll(t, gc.ID, gtok, "", false, "X-Origin-Secret", "from-cloudfront-0123456789"); r.status != 204 {
		t.Errorf("with the origin secret: %d %s", r.status, r.body)
	}

	// The limit: RATE_LIMIT_TURN's numbers, in a bucket of its own. One
	// turn, then reattaches until refused (a window boundary may fall
	// between them), then the turn bucket still has its second turn.
	limited := newStack(t, "RATE_LIMIT_TURN", "2/1h")
	ltok, luid := limited.signIn(t, uniqueSub("reattach-limit"), "")
	lc := newConversation(t, luid)
	lev := nonPing(limited.turnBody(t, lc.ID, ltok, message("hi")))
	var last response
	tries := 0
	for range 5 {
		tries++
		if last = limited.watchAll(t, lc.ID, ltok, lev[0].ID, false); last.status == 429 {
			break
		}
		if last.status != 200 || last.header.Get("X-RateLimit-Limit") != "2" {
			t.Fatalf("reattach %d: %d, headers %v", tries, last.status, last.header)
		}
	}
	h := last.header
	if last.status != 429 || last.body != `{"error":"Too many requests. Please slow down."}` {
		t.Fatalf("reattach %d: %d %s", tries, last.status, last.body)
	}
	if h.Get("X-RateLimit-Limit") != "2" || h.Get("X-RateLimit-Remaining") != "0" || h.Get("X-RateLimit-Reset") == "" {
		t.Fatalf("429 headers %v", h)
	}
	if ra, _ := strconv.Atoi(h.Get("Retry-After")); ra < 1 || ra > 3600 {
		t.Fatalf("Retry-After %q", h.Get("Retry-After"))
	}
	if evs := nonPing(limited.turnBody(t, lc.ID, ltok, message("again"))); evs[len(evs)-1].Type != "complete" {
		t.Fatalf("a turn after the reattaches were refused: %+v", evs[len(evs)-1])
	}
}

// errorOf is the error message of a JSON error answer, "" if it has none.
func errorOf(t *testing.T, r response) string {
	t.Helper()
	msg, _ := r.json(t)["error"].(string)
	return msg
}

var eventIDPattern = regexp.MustCompile(`^([A-Za-z0-9]+)\.([1-9][0-9]*)$`)

// GET /chat/{id} shows the running turn: its id (the prefix of its events'
// ids), when it began, and the id of its last logged event, from which a
// client reattaches; null before and after.
func TestActiveTurnInConversationDetail(t *testing.T) {
	s := newStack(t, roomy...)
	tok, uid := s.signIn(t, uniqueSub("active"), "")
	c := newConversation(t, uid)
	activeTurn := func() (map[string]any, string) {
		t.Helper()
		r := s.call(t, "GET", "/chat/"+c.ID, "", tok)
		m := r.json(t)
		v, present := m["activeTurn"]
		if r.status != 200 || !present {
			t.Fatalf("GET /chat/{id}: %d %s", r.status, r.body)
		}
		if v == nil {
			return nil, r.body
		}
		a, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("activeTurn %#v", v)
		}
		return a, r.body
	}
	if a, body := activeTurn(); a != nil {
		t.Fatalf("before any turn: %s", body)
	}
	// A lease held by other work (a push) is no turn to reattach to.
	push := "PUSH" + strconv.Itoa(mrand.Int())
	if err := storetest.HoldRun(t.Context(), c.ID, push, time.Now(), time.Minute); err != nil {
		t.Fatal(err)
	}
	if a, body := activeTurn(); a != nil {
		t.Fatalf("while a push holds the conversation: %s", body)
	}
	st := store.New(storetest.DB(), store.Options{Table: storetest.TableName()})
	if err := st.ReleaseRun(t.Context(), c.ID, push); err != nil {
		t.Fatal(err)
	}

	start := time.Now().Truncate(time.Millisecond)
	live := s.startTurn(t, c.ID, tok, message(claudetest.Script("slow-total")))
	evs := live.until(t, nil, 2)
	turn, _, _ := strings.Cut(nonPing(evs)[0].ID, ".")

	// Its last event id comes once the log has an event; until then it is
	// null, and the turn is shown all the same.
	guard := hangGuard(t)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var a map[string]any
	for {
		var body string
		a, body = activeTurn()
		if a == nil || a["id"] != turn || len(a) != 3 {
			t.Fatalf("while the turn %s runs: %s", turn, body)
		}
		if started := requireDate(t, a, "startedAt"); started.Before(start) || started.After(time.Now()) {
			t.Fatalf("startedAt %v, the turn was posted at %v", started, start)
		}
		if a["lastEventId"] != nil {
			break
		}
		if _, present := a["lastEventId"]; !present {
			t.Fatalf("activeTurn without lastEventId: %s", body)
		}
		select {
		case <-guard.Done():
			t.Fatalf("the turn's log stayed empty: %s", body)
		case <-tick.C:
		}
	}
	lastID, _ := a["lastEventId"].(string)
	m := eventIDPattern.FindStringSubmatch(lastID)
	if m == nil || m[1] != turn {
		t.Fatalf("lastEventId %#v of turn %s", a["lastEventId"], turn)
	}
	// Reattaching from it gives the events after it.
	w := s.watchConn(t, c.ID, tok, lastID, false)
	first := w.until(t, nil, 1)
	seq, _ := strconv.Atoi(m[2])
	if got := nonPing(first)[0].ID; got != turn+"."+strconv.Itoa(seq+1) {
		t.Fatalf("after %s came %s", lastID, got)
	}
	w.close()

	if r := s.call(t, "POST", "/chat/"+c.ID+"/cancel", "", tok); r.status != 200 {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	if _, err := live.rest(); err != nil {
		t.Fatal(err)
	}
	// The turn's terminal event went out after its save: it is over.
	if a, body := activeTurn(); a != nil {
		t.Fatalf("after the turn: %s", body)
	}
}

// Another device of the same user cancels the turn it watches: the watcher
// and the turn's own stream end with the same terminal event, and saw the
// same events before it.
func TestCancelWhileWatched(t *testing.T) {
	s := newStack(t, roomy...)
	sub := uniqueSub("cancel-watched")
	phone, uid := s.signIn(t, sub, "")
	tablet, uid2 := s.signIn(t, sub, "") // another sign-in of the same user
	if uid2 != uid || tablet == phone {
		t.Fatalf("two sign-ins: users %s %s", uid, uid2)
	}
	c := newConversation(t, uid)
	live := s.startTurn(t, c.ID, phone, message(claudetest.Script("rate", "n", 1_000_000, "rate", 100)))
	head := live.until(t, nil, 3)
	w := s.watchConn(t, c.ID, tablet, "", false)
	watched := w.until(t, nil, 5) // it follows the turn
	if r := s.call(t, "POST", "/chat/"+c.ID+"/cancel", "", tablet); r.status != 200 || r.body != `{"success":true}` {
		t.Fatalf("cancel from the other device: %d %s", r.status, r.body)
	}
	both := restAll(t, live, w)
	res0, res1 := both[0], both[1]
	stream := appRules(t, live.what, live.raw.String())
	seen := appRules(t, w.what, w.raw.String())
	sameEvents(t, "the live stream as read", append(head, res0.evs...), stream)
	sameEvents(t, "the watcher's stream as read", append(watched, res1.evs...), seen)
	end, wend := checkOneTerminal(t, stream), checkOneTerminal(t, seen)
	if end.Type != "error" || end.Message != "Cancelled" {
		t.Fatalf("the turn's stream ended with %+v", end)
	}
	if wend.ID != end.ID || wend.Data != end.Data {
		t.Fatalf("the watcher ended with %s %s, the turn's stream with %s %s", wend.ID, wend.Data, end.ID, end.Data)
	}
	consecutive(t, "the live stream", stream, 1)
	sameEvents(t, "the watcher", seen, stream)
}

// The app's rules hold for every stream of a turn, live and reattached:
// the retry line first, id lines it ignores, and each event's data what it
// was before ids existed, byte for byte the same in a replay, a permission
// request's denials too.
func TestReattachStreamsFollowTheAppsRules(t *testing.T) {
	s := newStack(t, roomy...)
	tok, uid := s.signIn(t, uniqueSub("rules"), "")
	c := newConversation(t, uid)

	live := s.turnBody(t, c.ID, tok, message(claudetest.Script("normal", "text", "Hello ✓ world \"quoted\"\nnext line")))
	if live[0].Type != "ping" || live[0].ID != "" {
		t.Fatalf("the live stream begins with %+v", live[0])
	}
	var chunk ssetest.Event
	for _, e := range live {
		if e.Type == "chunk" {
			chunk = e
			break
		}
	}
	if want := `{"type":"chunk","content":"Hello ✓ world \"quoted\"\nnext line"}`; chunk.Data != want {
		t.Fatalf("chunk data %s, want %s", chunk.Data, want)
	}
	sameEvents(t, "a replay", s.replay(t, c.ID, tok, "", false), live)

	// A permission request: its denials come back from the log as sent.
	denied := nonPing(s.turnBody(t, c.ID, tok, message(claudetest.Script("denied"))))
	end := denied[len(denied)-1]
	if end.Type != "permission_required" || len(end.Denials) != 1 || end.Denials[0].ToolInput["command"] != "rm -rf build" {
		t.Fatalf("terminal %+v", end)
	}
	sameEvents(t, "the replay of a permission request", s.replay(t, c.ID, tok, "", true), denied)
	sameEvents(t, "the rest of a permission request", s.replay(t, c.ID, tok, denied[0].ID, false), denied[1:])
}

// With the real Claude CLI: a watcher attached mid-way, while the CLI
// waits on the model between a tool call and its answer, and replays after
// the end, reproduce the turn's stream.
func TestReattachWithTheRealCLI(t *testing.T) {
	reached, release := make(chan struct{}), make(chan struct{})
	var reachedOnce, releaseOnce sync.Once
	commands := anthropicfake.Commands()
	model := anthropicfake.New(func(r anthropicfake.Request) anthropicfake.Reply {
		if last, _ := r.LastUser(); len(last.ToolResults()) > 0 {
			reachedOnce.Do(func() { close(reached) })
			<-release
		}
		return commands(r)
	})
	t.Cleanup(model.Close)
	s := newStack(t, append([]string{
		"CLAUDE_PATH", claudetest.RealCLI(t),
		"ANTHROPIC_BASE_URL", model.URL,
		"ANTHROPIC_API_KEY", "sk-ant-test-key",
	}, roomy...)...)
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) }) // before the stack closes
	tok, uid := s.signIn(t, uniqueSub("realcli"), "")
	c := newConversation(t, uid)

	live := s.startTurn(t, c.ID, tok, `{"message":`+jsonString(anthropicfake.CommandPrefix+"echo reattached")+`,"allowedTools":["Bash"]}`)
	head := live.until(t, nil, 1)
	r0 := live.restAsync()
	select {
	case <-reached:
	case res := <-r0:
		t.Fatalf("the turn ended before the model got the tool's result: %v %+v", res.err, res.evs)
	case <-hangGuard(t).Done():
		t.Fatal("the model never got the tool's result")
	}
	// Mid-way: the CLI waits for the model.
	w1 := s.watchConn(t, c.ID, tok, "", false)
	w2 := s.watchConn(t, c.ID, tok, nonPing(head)[0].ID, true)
	r1, r2 := w1.restAsync(), w2.restAsync()
	releaseOnce.Do(func() { close(release) })
	for _, r := range []restResult{<-r0, <-r1, <-r2} {
		if r.err != nil {
			t.Fatal(r.err)
		}
	}
	stream := appRules(t, live.what, live.raw.String())
	consecutive(t, "the live stream", stream, 1)
	if end := checkOneTerminal(t, stream); end.Type != "complete" {
		t.Fatalf("terminal %+v", end)
	}
	types := ""
	for _, e := range nonPing(stream) {
		types += " " + e.Type
	}
	if !strings.Contains(types, "tool_start") || !strings.Contains(types, "tool_end") || !strings.Contains(chunks(stream), "Done.") {
		t.Fatalf("the turn streamed%s, %q", types, chunks(stream))
	}
	sameEvents(t, "the watcher attached mid-way", appRules(t, w1.what, w1.raw.String()), stream)
	sameEvents(t, "the watcher attached mid-way after the first event", appRules(t, w2.what, w2.raw.String()), nonPing(stream)[1:])
	// After the end.
	sameEvents(t, "the replay", s.replay(t, c.ID, tok, "", false), stream)
	sameEvents(t, "the rest after the first event", s.replay(t, c.ID, tok, nonPing(stream)[0].ID, false), nonPing(stream)[1:])
}

// A watch ends cleanly before its invocation's deadline (endMargin, 5 s,
// before it), without a terminal event, while the turn runs on; the client
// reconnects with its last id and gets the rest. Served at the Function
// URL, with the invocation's deadline.
func TestReattachEndsBeforeTheDeadline(t *testing.T) {
	s := newStack(t, roomy...)
	tok, uid := s.signIn(t, uniqueSub("watch-deadline"), "")
	c := newConversation(t, uid)
	live := s.startTurn(t, c.ID, tok, message(claudetest.Script("rate", "n", 1_000_000, "rate", 100)))
	head := nonPing(live.until(t, nil, 3))

	const remaining = 6500 * time.Millisecond // the watch ends at about 1.5 s
	ctx, cancel := context.WithTimeout(lambdacontext.NewContext(context.Background(),
		&lambdacontext.LambdaContext{AwsRequestID: "reattach-deadline"}), remaining)
	defer cancel()
	deadline, _ := ctx.Deadline()
	path := "/chat/" + c.ID + "/stream"
	remember(tok)
	ev := events.LambdaFunctionURLRequest{
		Version: "2.0", RawPath: path,
		Headers: map[string]string{"x-api-key": apiKey, "authorization": "Bearer " + tok, "accept": "text/event-stream",
			"last-event-id": head[0].ID},
		RequestContext: events.LambdaFunctionURLRequestContext{
			HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{Method: "GET", Path: path, SourceIP: "192.0.2.9"},
		},
	}
	raw, _ := json.Marshal(ev)
	out, err := s.app.Stream.Lambda()(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	resp, ok := out.(*events.LambdaFunctionURLStreamingResponse)
	if !ok || resp.StatusCode != 200 {
		t.Fatalf("function url answer %T %+v", out, out)
	}
	body, err := io.ReadAll(resp.Body)
	ended := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	// It ends once less than endMargin is left, never sooner: it follows
	// the turn until then.
	const endMargin = 5 * time.Second
	if !ended.Before(deadline) || deadline.Sub(ended) > endMargin {
		t.Fatalf("the watch ended %v before its deadline, want less than %v before it", deadline.Sub(ended), endMargin)
	}
	t.Logf("the watch ended %v before its deadline", deadline.Sub(ended).Round(time.Millisecond))
	first := appRules(t, "the watch cut by its deadline", string(body))
	for _, e := range first {
		if e.Type != "chunk" && e.Type != "ping" {
			t.Fatalf("the watch cut by its deadline sent %+v", e)
		}
	}
	got := append(head[:1:1], nonPing(first)...)
	if len(got) < 2 {
		t.Fatalf("the watch sent nothing of the running turn: %q", body)
	}
	// The client reconnects with the last id it got, and the turn ends.
	w := s.watchConn(t, c.ID, tok, got[len(got)-1].ID, false)
	got = nonPing(w.until(t, got, len(got)+5))
	if r := s.call(t, "POST", "/chat/"+c.ID+"/cancel", "", tok); r.status != 200 {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	rest, err := w.rest()
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, nonPing(rest)...)
	if _, err := live.rest(); err != nil {
		t.Fatal(err)
	}
	stream := appRules(t, live.what, live.raw.String())
	sameEvents(t, "the watch cut by its deadline, then the reconnect", got, stream)
}

// A buffered turn (POST /chat/{id}, answered 202 while it runs on) streams
// to nobody, and is logged all the same: the app can follow it.
func TestReattachToABufferedTurn(t *testing.T) {
	s := newStackWith(t, gateway.Options{Chat: chatfn.Options{BufferedWait: 300 * time.Millisecond}}, roomy...)
	tok, uid := s.signIn(t, uniqueSub("buffered-watch"), "")
	c := newConversation(t, uid)
	const n = 200
	r := s.call(t, "POST", "/chat/"+c.ID, message(claudetest.Script("rate", "n", n, "rate", 200)), tok)
	if r.status != 202 {
		t.Fatalf("buffered turn: %d %s", r.status, r.body)
	}
	w := s.watchConn(t, c.ID, tok, "", false)
	if _, err := w.rest(); err != nil {
		t.Fatal(err)
	}
	evs := appRules(t, w.what, w.raw.String())
	consecutive(t, "the buffered turn followed", evs, 1)
	timestamps(t, "the buffered turn followed", evs, n)
	if end := checkOneTerminal(t, evs); end.Type != "complete" {
		t.Fatalf("terminal %+v", end)
	}
	sameEvents(t, "the buffered turn's replay", s.replay(t, c.ID, tok, "", false), evs)
}

// While the table is unreachable, a turn's log tries again logEvery (250
// ms) after a failed write, as journal.loop says ("Tried again with the
// next batch, logEvery from now"), not once per event the turn streams:
// a struggling table must not get more writes because it struggles.
func TestEventLogRetriesAreSpacedDuringAnOutage(t *testing.T) {
	out := &outage{failed: map[string]int{}}
	s := newStackWith(t, gateway.Options{DynamoDB: []func(*dynamodb.Options){out.option()}}, roomy...)
	t.Cleanup(func() { out.down.Store(false) })
	tok, uid := s.signIn(t, uniqueSub("log-retries"), "")
	c := newConversation(t, uid)
	live := s.startTurn(t, c.ID, tok, message(claudetest.Script("rate", "n", 1_000_000, "rate", 200)))
	evs := nonPing(live.until(t, nil, 10))

	const (
		logEvery = 250 * time.Millisecond // turn.logEvery
		streamed = 300                    // events streamed during the outage
	)
	out.down.Store(true)
	began := time.Now()
	live.until(t, evs, len(evs)+streamed)
	out.down.Store(false)
	lasted := time.Since(began)
	// One write in flight as the outage began, then one each logEvery.
	bound := 2 + int(lasted/logEvery)
	failed := out.count("PutItem")
	t.Logf("%d events streamed in %v of outage; %d failed log writes (bound %d)", streamed, lasted.Round(time.Millisecond), failed, bound)
	if failed > bound {
		t.Errorf("%d log writes failed in %v of outage (%d events streamed): the log retried per event, not each %v",
			failed, lasted.Round(time.Millisecond), streamed, logEvery)
	}
	// And nothing was lost: the log caught up.
	if r := s.call(t, "POST", "/chat/"+c.ID+"/cancel", "", tok); r.status != 200 {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	if _, err := live.rest(); err != nil {
		t.Fatal(err)
	}
	stream := appRules(t, live.what, live.raw.String())
	sameEvents(t, "the replay after the outage", s.replay(t, c.ID, tok, "", false), stream)
}

// A turn whose start was undone (its buffered start failed: 503, and
// nothing of it is left) never ran: reattaching without an id still
// replays the conversation's latest turn that did, not 204.
func TestReattachAfterAnUndoneStart(t *testing.T) {
	missingFunction(t)
	s := newStack(t, append([]string{"STREAM_FUNCTION_NAME", "ovrlrd-stream"}, roomy...)...)
	tok, uid := s.signIn(t, uniqueSub("undone-watch"), "")
	c := newConversation(t, uid)
	ran := nonPing(s.turnBody(t, c.ID, tok, message(claudetest.Script("normal", "text", "the turn that ran"))))
	if r := s.call(t, "POST", "/chat/"+c.ID, message("never answered"), tok); r.status != 503 {
		t.Fatalf("the buffered start: %d %s", r.status, r.body)
	}
	if d := s.call(t, "GET", "/chat/"+c.ID, "", tok); d.json(t)["activeTurn"] != nil {
		t.Fatalf("the undone turn is shown running: %s", d.body)
	}
	r := s.watchAll(t, c.ID, tok, "", false)
	if r.status != 200 {
		t.Fatalf("reattaching without an id after an undone start: %d %q, want the turn that ran", r.status, r.body)
	}
	sameEvents(t, "the replay after an undone start", appRules(t, "the replay", r.body), ran)
}

// An event too large for one item of the log is logged in parts and
// replayed whole, byte for byte. Here a chunk of about 600 KB: the fake
// CLI echoes its prompt, whose 99,000 U+2028 are 3 bytes each as text and
// 6 in the event's JSON.
func TestReattachLargeEvent(t *testing.T) {
	s := newStack(t, roomy...)
	tok, uid := s.signIn(t, uniqueSub("large-event"), "")
	c := newConversation(t, uid)
	prompt := `{"mode":"argv","pad":"` + strings.Repeat("\u2028", 99_000) + `"}`
	live := nonPing(s.turnBody(t, c.ID, tok, message(prompt)))
	var (
		sizes []string
		large bool
	)
	for _, e := range live {
		sizes = append(sizes, fmt.Sprintf("%s %d", e.Type, len(e.Data)))
		large = large || len(e.Data) > 400<<10
	}
	t.Logf("events: %s", strings.Join(sizes, ", "))
	if end := live[len(live)-1]; end.Type != "complete" || !large {
		t.Fatalf("want a chunk larger than an item, then complete: %s; %s", strings.Join(sizes, ", "), end.Data)
	}
	sameEvents(t, "the replay", s.replay(t, c.ID, tok, "", false), live)
	sameEvents(t, "the rest after the first event", s.replay(t, c.ID, tok, live[0].ID, true), live[1:])
}

// The turn's save fails (its transaction, which would log the terminal
// event, keeps failing): the turn's stream ends with the save's error, and
// a watcher on another instance gets that same terminal event, at once or
// when it reconnects with its last id, as an EventSource does.
func TestReattachWhenTheSaveFails(t *testing.T) {
	fault := &storetest.Fault{Op: "TransactWriteItems"}
	a := newStackWith(t, gateway.Options{DynamoDB: faulting(fault)}, roomy...)
	b := a.twin(t)
	t.Cleanup(func() { fault.Times.Store(0) })
	tok, uid := a.signIn(t, uniqueSub("save-fails"), "")
	c := newConversation(t, uid)
	// A turn that runs until it is cancelled.
	live := a.startTurn(t, c.ID, tok, message(claudetest.Script("rate", "n", 1_000_000, "rate", 200)))
	head := live.until(t, nil, 10)
	w := b.watchConn(t, c.ID, tok, "", false)
	fault.Times.Store(1000) // every save from now on
	if r := b.call(t, "POST", "/chat/"+c.ID+"/cancel", "", tok); r.status != 200 {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	res0 := restAll(t, live, w)[0]
	fault.Times.Store(0)
	if fault.Fired.Load() == 0 {
		t.Fatal("the save's transaction was never tried")
	}
	stream := appRules(t, live.what, live.raw.String())
	sameEvents(t, "the live stream as read", append(head, res0.evs...), stream)
	consecutive(t, "the live stream", stream, 1)
	if end := checkOneTerminal(t, stream); end.Type != "error" || end.Message != saveFailed {
		t.Fatalf("terminal %+v", end)
	}
	seen := nonPing(appRules(t, w.what, w.raw.String()))
	if last := seen[len(seen)-1]; last.Type != "error" {
		t.Logf("the watcher ended after %s without the terminal event; it reconnects", last.ID)
		seen = append(seen, nonPing(b.replay(t, c.ID, tok, last.ID, false))...)
	}
	sameEvents(t, "the watcher on the other instance", seen, stream)
	if d := b.call(t, "GET", "/chat/"+c.ID, "", tok); d.json(t)["activeTurn"] != nil {
		t.Fatalf("after the failed save: %s", d.body)
	}
}
