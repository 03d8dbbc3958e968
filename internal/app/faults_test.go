package app_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/ovrlrd/cloud/internal/claude"
	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/devkit/dynamolocal"
	"github.com/ovrlrd/cloud/internal/devkit/ssetest"
	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/store"
)

// The tests in this file break one thing the service depends on in the
// middle of a turn: the database, the invocation's time, the client's
// reading. Each checks the same promises: the client gets exactly one
// terminal event with a clear message, nothing already acknowledged is lost,
// nothing is half written, nothing is left running, and the service works
// again once the fault clears. (A client that disconnects mid-turn is
// TestClientThatLeavesGetsThePush.)

// saveFailed is the terminal error of a turn whose answer could not be
// saved.
const saveFailed = "Failed to save the response. Please try again."

// DynamoDB stops while a turn streams, and comes back after it ended.
//
// The turn's own stream does not need the database, so the client still gets
// everything the CLI says; the save at the end fails (after the SDK's
// retries), and the turn ends with exactly one error instead of complete.
// The save is one transaction, so nothing of the turn is written: what was
// stored before the fault (the earlier turn, this turn's user message) is
// all there is. The lease cannot be released while the database is down
// either, so that conversation refuses turns (409) until the lease expires,
// 60 s after its last renewal; the test does not wait for that. Every other
// request works as soon as the database is back.
func TestDynamoDBStoppedMidTurn(t *testing.T) {
	t.Cleanup(func() { claudetest.AssertNoRunProcesses(t, claude.RunMarkerVar) })
	ctx := context.Background()
	dataDir := t.TempDir() // kept on disk, so the data outlives the restart
	db, err := dynamolocal.Start(ctx, dynamolocal.Options{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Stop() }) // the last server started
	table := "faults-" + strings.ToLower(rand.Text()[:10])
	if err := dynamolocal.CreateTable(ctx, store.NewDB(storetest.AWSConfig(), db.Endpoint), table); err != nil {
		t.Fatal(err)
	}
	s := newStack(t, "TABLE_NAME", table, "DYNAMODB_ENDPOINT", db.Endpoint)
	tok, _ := s.signIn(t, uniqueSub("dbdown"), "")

	// A turn that completes before the fault.
	first := claudetest.Script("normal", "text", "saved before the fault")
	_, evs := s.stream(t, "/chat/stream", `{"message":`+jsonString(first)+`}`, tok)
	if len(evs) == 0 || evs[len(evs)-1].Type != "complete" {
		t.Fatalf("first turn: %+v", evs)
	}
	conv := evs[len(evs)-1].ConversationID

	// The second turn: DynamoDB stops as its first chunk arrives.
	second := claudetest.Script("lines", "delay_ms", 700, "lines", []any{
		map[string]any{"type": "system", "subtype": "init", "session_id": "s-2"},
		assistantText("streamed before the fault"),
		assistantText(" and after it"),
		map[string]any{"type": "result", "subtype": "success", "is_error": false, "result": "done", "total_cost_usd": 0.001},
	})
	resp := s.openStream(t, http.DefaultClient, "/chat/"+conv+"/stream", `{"message":`+jsonString(second)+`}`, tok)
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("second turn: %d", resp.StatusCode)
	}
	var (
		got     []ssetest.Event
		stopped time.Time
	)
	rd := newEventReader(resp.Body)
	for {
		ev, err := rd.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev)
		if ev.Type == "chunk" && stopped.IsZero() {
			db.Stop()
			stopped = time.Now()
		}
	}
	if stopped.IsZero() {
		t.Fatalf("no chunk arrived: %+v", got)
	}
	t.Logf("the stream ended %v after DynamoDB stopped", time.Since(stopped).Round(time.Millisecond))
	last := checkOneTerminal(t, got)
	if last.Type != "error" || last.Message != saveFailed {
		t.Fatalf("terminal %+v, want error %q", last, saveFailed)
	}
	if c := chunks(got); c != "streamed before the fault and after it" {
		t.Fatalf("chunks %q: the stream lost what the CLI said during the outage", c)
	}
	claudetest.AssertNoRunProcesses(t, claude.RunMarkerVar) // the turn returned: its CLI is gone

	// Down, a request fails as unavailable; nothing hangs.
	down := time.Now()
	if r := s.call(t, "GET", "/chat/"+conv, "", tok); r.status != 503 || r.body != `{"error":"The database is unavailable."}` {
		t.Fatalf("GET /chat/{id} while DynamoDB is down: %d %s", r.status, r.body)
	}
	t.Logf("a read while DynamoDB is down: 503 in %v", time.Since(down).Round(time.Millisecond))

	// DynamoDB comes back, on the same port, over the same data.
	db = restartDynamoDB(t, dataDir, db.Port())

	if r := s.call(t, "GET", "/chat", "", tok); r.status != 200 {
		t.Fatalf("GET /chat after the restart: %d %s", r.status, r.body)
	}
	// What was stored before the fault is intact, and nothing of the
	// failed turn was written: no answer, no outcome, no session id, no
	// count.
	convObj, msgs, _ := appDetail(t, s.call(t, "GET", "/chat/"+conv, "", tok))
	if len(msgs) != 3 || msgs[0]["content"] != first || msgs[1]["content"] != "saved before the fault" ||
		msgs[2]["role"] != "user" || msgs[2]["content"] != second {
		t.Fatalf("messages after the restart: %v", msgs)
	}
	if convObj["id"] != conv {
		t.Fatalf("conversation %v", convObj)
	}
	kinds := partitionKinds(t, db.Endpoint, table, "CONV#"+conv)
	if kinds["MSG#"] != 3 || kinds["TURN#"] != 1 || kinds["RUN"] != 1 || kinds["EV#"] < 1 || len(kinds) != 4 {
		t.Fatalf("items of the conversation: %v (want 3 messages, the first turn's outcome and event log, the failed turn's lease)", kinds)
	}
	// The failed turn's lease could not be released while the database
	// was down: the conversation refuses turns until it expires.
	if r, _ := s.stream(t, "/chat/"+conv+"/stream", `{"message":"too soon"}`, tok); r.status != 409 ||
		r.body != `{"error":"A turn is already running for this conversation."}` {
		t.Fatalf("turn on the leased conversation: %d %s", r.status, r.body)
	}
	// Everything else works: a turn in a new conversation completes and
	// is saved.
	_, evs = s.stream(t, "/chat/stream", `{"message":`+jsonString(claudetest.Script("normal", "text", "after the restart"))+`}`, tok)
	if last := checkOneTerminal(t, evs); last.Type != "complete" {
		t.Fatalf("turn after the restart: %+v", last)
	}
	_, msgs, _ = appDetail(t, s.call(t, "GET", "/chat/"+evs[len(evs)-1].ConversationID, "", tok))
	if len(msgs) != 2 || msgs[1]["content"] != "after the restart" {
		t.Fatalf("messages of the new conversation: %v", msgs)
	}
}

// restartDynamoDB starts DynamoDB Local again on port, over dataDir, trying
// again while the old server's socket lingers.
func restartDynamoDB(t *testing.T, dataDir string, port int) *dynamolocal.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		db, err := dynamolocal.Start(ctx, dynamolocal.Options{DataDir: dataDir, Port: port})
		if err == nil {
			t.Cleanup(db.Stop)
			return db
		}
		select {
		case <-ctx.Done():
			t.Fatalf("restart DynamoDB Local on port %d: %v", port, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// partitionKinds counts a partition's items by kind (the sort key up to and
// including '#', or all of it).
func partitionKinds(t *testing.T, endpoint, table, pk string) map[string]int {
	t.Helper()
	var items []struct {
		SK string `dynamo:"SK"`
	}
	err := store.NewDB(storetest.AWSConfig(), endpoint).Table(table).Get("PK", pk).Consistent(true).All(context.Background(), &items)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, it := range items {
		k := it.SK
		if i := strings.IndexByte(k, '#'); i >= 0 {
			k = k[:i+1]
		}
		kinds[k]++
	}
	return kinds
}

// The Lambda deadline comes while the CLI is still talking. The turn keeps
// 30 s of the invocation for its saves and its terminal event (CLAUDE_TIMEOUT
// is far away here), so with 33 s left the CLI is stopped at about 3 s; what
// it said is saved, and the stream ends with one "Request timed out", well
// before the deadline.
func TestLambdaDeadlineMidTurn(t *testing.T) {
	t.Cleanup(func() { claudetest.AssertNoRunProcesses(t, claude.RunMarkerVar) })
	s := newStack(t) // CLAUDE_TIMEOUT is 840 s: only the deadline cuts the turn
	tok, _ := s.signIn(t, uniqueSub("deadline"), "")
	h := s.app.Stream.Lambda()

	const remaining = 33 * time.Second
	ctx, cancel := context.WithTimeout(lambdacontext.NewContext(context.Background(),
		&lambdacontext.LambdaContext{AwsRequestID: "faults-deadline"}), remaining)
	defer cancel()
	deadline, _ := ctx.Deadline()
	start := time.Now()
	resp := invokeURL(t, ctx, h, "/chat/stream", claudetest.Script("slow-total"), tok)
	body, err := io.ReadAll(resp.Body)
	ended := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil || !ended.Before(deadline) {
		t.Fatalf("the stream ended %v after the deadline", ended.Sub(deadline))
	}
	took := ended.Sub(start)
	t.Logf("the stream ended %v after the invocation began, %v before its deadline", took.Round(time.Millisecond), time.Until(deadline).Round(time.Millisecond))
	// The turn ran until its cut-off (remaining − 30 s), not shorter.
	if took < 2500*time.Millisecond || time.Until(deadline) < 5*time.Second {
		t.Fatalf("the stream took %v; the turn should end at about %v", took, remaining-30*time.Second)
	}
	evs, err := ssetest.Decode(body)
	if err != nil {
		t.Fatalf("the app could not decode the stream: %v", err)
	}
	if last := checkOneTerminal(t, evs); last.Type != "error" || last.Message != "Request timed out" {
		t.Fatalf("terminal %+v", last)
	}
	streamed := chunks(evs)
	if n := strings.Count(streamed, "tick"); n < 10 || streamed != strings.Repeat("tick", n) {
		t.Fatalf("chunks %q", streamed)
	}
	claudetest.AssertNoRunProcesses(t, claude.RunMarkerVar)

	// Saved before the terminal event: the user message and every chunk
	// streamed.
	convs, _ := appList(t, s.call(t, "GET", "/chat", "", tok))
	if len(convs) != 1 {
		t.Fatalf("conversations %v", convs)
	}
	conv := convs[0]["id"].(string)
	_, msgs, _ := appDetail(t, s.call(t, "GET", "/chat/"+conv, "", tok))
	if len(msgs) != 2 || msgs[1]["role"] != "assistant" || msgs[1]["content"] != streamed {
		t.Fatalf("messages %v, want the %d streamed ticks saved", msgs, len(streamed)/4)
	}

	// The save released the lease and kept the outcome, in one
	// transaction.
	if kinds := partitionKinds(t, storetest.Endpoint(), storetest.TableName(), "CONV#"+conv); kinds["RUN"] != 0 || kinds["TURN#"] != 1 || kinds["MSG#"] != 2 {
		t.Fatalf("items of the conversation: %v (want 2 messages, the outcome, no lease)", kinds)
	}
	// The next invocation works. (Not in this conversation: the fake CLI
	// writes its transcript only at its result line, so resuming a run it
	// was stopped in says "No conversation found"; the real CLI writes as
	// it goes.)
	ctx2, cancel2 := context.WithTimeout(context.Background(), remaining)
	defer cancel2()
	resp = invokeURL(t, ctx2, h, "/chat/stream", claudetest.Script("normal", "text", "next invocation"), tok)
	body, _ = io.ReadAll(resp.Body)
	evs, err = ssetest.Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	if last := checkOneTerminal(t, evs); last.Type != "complete" || last.ConversationID == conv {
		t.Fatalf("next invocation: %+v", last)
	}
}

// invokeURL calls the StreamFunction's handler with a Function URL event.
func invokeURL(t *testing.T, ctx context.Context, h func(context.Context, json.RawMessage) (any, error), path, message, tok string) *events.LambdaFunctionURLStreamingResponse {
	t.Helper()
	body := `{"message":` + jsonString(message) + `}`
	rememberJSON(body, true)
	ev := events.LambdaFunctionURLRequest{
		Version: "2.0", RawPath: path,
		Headers: map[string]string{"x-api-key": apiKey, "authorization": "Bearer " + tok, "content-type": "application/json", "accept": "text/event-stream"},
		Body:    body,
		RequestContext: events.LambdaFunctionURLRequestContext{
			HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{Method: "POST", Path: path, SourceIP: "192.0.2.7"},
		},
	}
	raw, _ := json.Marshal(ev)
	out, err := h(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	resp, ok := out.(*events.LambdaFunctionURLStreamingResponse)
	if !ok || resp.StatusCode != 200 {
		t.Fatalf("function url answer %T %+v", out, out)
	}
	t.Cleanup(func() { _, _ = io.Copy(io.Discard, resp.Body) })
	return resp
}

// A client that reads very slowly for a while, then normally, while the CLI
// floods. Read at the Function URL (the stream function's response body, as
// the Lambda runtime reads it: nothing buffers between it and the reader),
// the server must hold back: the CLI waits on its pipe instead of the
// events piling up in memory. Read over HTTP through the gateway, loopback
// TCP's buffers absorb much of the flood, so there only order, completeness,
// memory and the save are checked.
func TestSlowClient(t *testing.T) {
	t.Cleanup(func() { claudetest.AssertNoRunProcesses(t, claude.RunMarkerVar) })
	s := newStack(t)
	tok, _ := s.signIn(t, uniqueSub("slowreader"), "")
	message := claudetest.Script("flood", "n", floodLines)

	t.Run("function URL", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		r := slowRead(t, s, tok, func() io.Reader {
			return invokeURL(t, ctx, s.app.Stream.Lambda(), "/chat/stream", message, tok).Body
		})
		// Everything between the CLI and the reader is bounded (its pipe,
		// the run's event channel, the turn's outbox), so the CLI wrote
		// its later lines only once the reader sped up. A server that
		// queued without bound would have taken all of them at once.
		if r.firstLate < 0 {
			t.Fatalf("the CLI wrote all %d lines during the slow phase: the server buffered them instead of holding back", floodLines)
		}
		if inFlight := r.firstLate - r.slowCount; inFlight > floodLines/4 {
			t.Fatalf("%d chunks were between the CLI and the slow reader (bound %d)", inFlight, floodLines/4)
		}
	})
	t.Run("over HTTP", func(t *testing.T) {
		slowRead(t, s, tok, func() io.Reader {
			resp := s.openStream(t, http.DefaultClient, "/chat/stream", `{"message":`+jsonString(message)+`}`, tok)
			t.Cleanup(func() { resp.Body.Close() })
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			return resp.Body
		})
	})
}

// floodLines is how many texts the fake CLI floods a slow reader with.
const floodLines = 20000

// slowReading is what slowRead saw.
type slowReading struct {
	slowCount int // chunks read during the slow phase
	firstLate int // the first chunk the CLI wrote after the slow phase, -1 if none
}

// slowRead starts a flood turn with open, reads its stream a few bytes at a
// time for 2 s, then normally, and checks that every chunk arrived, in
// order, that heap use stayed flat, and that the whole answer was saved.
func slowRead(t *testing.T, s *stack, tok string, open func() io.Reader) slowReading {
	t.Helper()
	const (
		slowFor  = 2 * time.Second
		slowSize = 64 // bytes per read while slow
		bound    = 32 << 20
	)
	// Collect garbage early, so that the peak measures what the turn
	// holds, not how far the collector lagged on busy cores.
	defer debug.SetGCPercent(debug.SetGCPercent(25))
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.HeapInuse
	peak := before
	stopSampling := make(chan struct{})
	var sampled sync.WaitGroup
	sampled.Go(func() {
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			select {
			case <-stopSampling:
				return
			case <-tick.C:
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
		}
	})

	start := time.Now()
	slow := &slowReader{r: open(), until: start.Add(slowFor), max: slowSize, pause: 2 * time.Millisecond}
	rd := newEventReader(slow)
	var (
		text      strings.Builder
		count     int
		prev      int64
		got       = slowReading{slowCount: -1, firstLate: -1}
		terminals []ssetest.Event
	)
	for {
		ev, err := rd.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if got.slowCount < 0 && !time.Now().Before(slow.until) {
			got.slowCount = count
		}
		switch ev.Type {
		case "chunk":
			// The fake writes each text as the wall-clock nanoseconds
			// it wrote it at.
			ts, err := strconv.ParseInt(ev.Content, 10, 64)
			if err != nil || len(ev.Content) != 19 {
				t.Fatalf("chunk %d: %q is not a whole timestamp", count, ev.Content)
			}
			if ts < prev {
				t.Fatalf("chunk %d out of order: %d after %d", count, ts, prev)
			}
			if got.firstLate < 0 && ts > slow.until.UnixNano() {
				got.firstLate = count
			}
			prev = ts
			text.WriteString(ev.Content)
			count++
		case "ping":
		case "complete", "error", "no_response", "permission_required":
			terminals = append(terminals, ev)
		default:
			t.Fatalf("unexpected event %+v", ev)
		}
	}
	took := time.Since(start)
	close(stopSampling)
	sampled.Wait()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	after := ms.HeapInuse

	if len(terminals) != 1 || terminals[0].Type != "complete" {
		t.Fatalf("terminal events %+v", terminals)
	}
	if count != floodLines {
		t.Fatalf("%d chunks, want %d", count, floodLines)
	}
	if got.slowCount < 0 || got.slowCount >= floodLines/2 {
		t.Fatalf("%d of %d chunks read in the slow phase: not slow enough to test anything", got.slowCount, floodLines)
	}
	ahead := "had written them all"
	if got.firstLate >= 0 {
		ahead = "was " + strconv.Itoa(got.firstLate-got.slowCount) + " chunks ahead"
	}
	t.Logf("%d chunks in %v; %d read in the slow %v, when the CLI %s; heap in use %d MiB before, peak +%d MiB, %+d MiB after",
		floodLines, took.Round(time.Millisecond), got.slowCount, slowFor, ahead, before>>20, (int64(peak)-int64(before))>>20, (int64(after)-int64(before))>>20)
	if grow := int64(peak) - int64(before); grow > bound {
		t.Fatalf("heap in use grew by %d MiB during the turn (bound %d MiB)", grow>>20, bound>>20)
	}

	// The whole answer is saved.
	conv := terminals[0].ConversationID
	_, msgs, _ := appDetail(t, s.call(t, "GET", "/chat/"+conv+"?limit=100", "", tok))
	var saved strings.Builder
	for _, m := range msgs[1:] {
		if m["role"] != "assistant" {
			t.Fatalf("message %v", m)
		}
		saved.WriteString(m["content"].(string))
	}
	if saved.String() != text.String() {
		t.Fatalf("saved %d bytes in %d messages, streamed %d", saved.Len(), len(msgs)-1, text.Len())
	}
	return got
}

// slowReader reads at most max bytes at a time, pausing before each read,
// until the time until; then it reads normally.
type slowReader struct {
	r     io.Reader
	until time.Time
	max   int
	pause time.Duration
}

func (s *slowReader) Read(p []byte) (int, error) {
	if time.Now().Before(s.until) {
		time.Sleep(s.pause)
		p = p[:min(len(p), s.max)]
	}
	return s.r.Read(p)
}

// openStream posts a turn and returns the response unread.
func (s *stack) openStream(t *testing.T, client *http.Client, path, body, tok string) *http.Response {
	t.Helper()
	remember(tok)
	rememberJSON(body, true)
	req, err := http.NewRequest("POST", s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-API-Key", apiKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// eventReader decodes SSE events one at a time, with the app's rules, as
// they arrive.
type eventReader struct {
	r     *bufio.Reader
	event bytes.Buffer
}

func newEventReader(r io.Reader) *eventReader { return &eventReader{r: bufio.NewReader(r)} }

// next returns the next event with data; io.EOF at a clean end.
func (e *eventReader) next() (ssetest.Event, error) {
	for {
		line, err := e.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			e.event.Write(line)
			continue
		}
		if err != nil {
			if err == io.EOF && e.event.Len() == 0 && len(line) == 0 {
				return ssetest.Event{}, io.EOF
			}
			return ssetest.Event{}, errors.New("the stream ended inside an event")
		}
		if len(line) == 1 { // the blank line that ends an event
			if e.event.Len() == 0 {
				continue
			}
			data, ok := ssetest.Data(bytes.TrimSuffix(e.event.Bytes(), []byte("\n")))
			e.event.Reset()
			if !ok {
				continue
			}
			return ssetest.DecodeData(data)
		}
		e.event.Write(line)
	}
}

func assistantText(s string) map[string]any {
	return map[string]any{"type": "assistant", "message": map[string]any{"content": []any{map[string]any{"type": "text", "text": s}}}}
}

// checkOneTerminal checks that a stream holds exactly one terminal event,
// last, and returns it.
func checkOneTerminal(t *testing.T, evs []ssetest.Event) ssetest.Event {
	t.Helper()
	n := 0
	for _, e := range evs {
		switch e.Type {
		case "complete", "no_response", "permission_required", "error":
			n++
		}
	}
	if n != 1 || len(evs) == 0 {
		t.Fatalf("%d terminal events in %+v", n, evs)
	}
	last := evs[len(evs)-1]
	if last.Type == "chunk" || last.Type == "ping" || last.Type == "segment_end" || last.Type == "tool_start" || last.Type == "tool_end" {
		t.Fatalf("the stream ends with %+v, not its terminal event", last)
	}
	return last
}

// chunks is the text of a stream's chunk events.
func chunks(evs []ssetest.Event) string {
	var b strings.Builder
	for _, e := range evs {
		if e.Type == "chunk" {
			b.WriteString(e.Content)
		}
	}
	return b.String()
}
