package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/store"
)

// The app decodes with Swift Codable: a required key that is missing or
// null fails the whole response, roles outside the enum fail it, and dates
// are parsed with ISO-8601 first. These checks apply the same rules.
var isoMillis = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`)

func requireString(t *testing.T, obj map[string]any, key string) string {
	t.Helper()
	s, ok := obj[key].(string)
	if !ok {
		t.Fatalf("key %q: want a non-null string, got %#v in %v", key, obj[key], obj)
	}
	return s
}

func requireDate(t *testing.T, obj map[string]any, key string) time.Time {
	t.Helper()
	s := requireString(t, obj, key)
	if !isoMillis.MatchString(s) {
		t.Fatalf("key %q: %q is not yyyy-MM-ddTHH:mm:ss.SSSZ", key, s)
	}
	tm, err := time.Parse(ovrlrd.TimeFormat, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func nullableString(t *testing.T, obj map[string]any, key string) {
	t.Helper()
	if v, present := obj[key]; present && v != nil {
		if _, ok := v.(string); !ok {
			t.Fatalf("key %q: want string or null, got %#v", key, v)
		}
	}
}

func appConversation(t *testing.T, v any) map[string]any {
	t.Helper()
	c, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("conversation is %#v", v)
	}
	requireString(t, c, "id")
	requireString(t, c, "userId")
	nullableString(t, c, "claudeSessionId")
	nullableString(t, c, "title")
	requireDate(t, c, "createdAt")
	requireDate(t, c, "updatedAt")
	return c
}

func appMessage(t *testing.T, v any) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("message is %#v", v)
	}
	requireString(t, m, "id")
	requireString(t, m, "conversationId")
	if role := requireString(t, m, "role"); !ovrlrd.Role(role).Valid() {
		t.Fatalf("role %q is outside the app's enum", role)
	}
	requireString(t, m, "content")
	requireDate(t, m, "createdAt")
	return m
}

// appList decodes GET /chat as the app does.
func appList(t *testing.T, r response) (convs []map[string]any, cursor string) {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("GET /chat: %d %s", r.status, r.body)
	}
	m := r.json(t)
	arr, ok := m["conversations"].([]any)
	if !ok {
		t.Fatalf("conversations must be an array: %s", r.body)
	}
	for _, c := range arr {
		convs = append(convs, appConversation(t, c))
	}
	return convs, pageEnd(t, m)
}

// appDetail decodes GET /chat/{id} as the app does.
func appDetail(t *testing.T, r response) (conv map[string]any, msgs []map[string]any, cursor string) {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("GET /chat/{id}: %d %s", r.status, r.body)
	}
	m := r.json(t)
	conv = appConversation(t, m["conversation"])
	arr, ok := m["messages"].([]any)
	if !ok {
		t.Fatalf("messages must be an array: %s", r.body)
	}
	for _, x := range arr {
		msgs = append(msgs, appMessage(t, x))
	}
	return conv, msgs, pageEnd(t, m)
}

// pageEnd checks hasMore and nextCursor agree; the cursor must survive a
// query string untouched (no '+', which would turn into a space).
func pageEnd(t *testing.T, m map[string]any) string {
	t.Helper()
	more, _ := m["hasMore"].(bool)
	cur, isString := m["nextCursor"].(string)
	switch {
	case more && !isString:
		t.Fatalf("hasMore without a cursor: %v", m)
	case !more && m["nextCursor"] != nil:
		t.Fatalf("a cursor without hasMore: %v", m)
	case strings.ContainsAny(cur, "+/= %&?#"):
		t.Fatalf("cursor %q is not query-safe", cur)
	}
	return cur
}

func uniqueSub(name string) string {
	return "001122." + name + "." + strconv.FormatInt(time.Now().UnixNano(), 36)
}

// newConversation creates a conversation owned by userID in the store, not
// through the API (the streaming issue adds the route that does this).
func newConversation(t *testing.T, userID string) ovrlrd.Conversation {
	t.Helper()
	st := store.New(storetest.DB(), store.Options{Table: storetest.TableName()})
	c, _, err := storetest.NewConversation(context.Background(), st, userID, "hello")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestChatRoutesFollowTheAppsDecoding(t *testing.T) {
	s := newStack(t)
	tok, uid := s.signIn(t, uniqueSub("shapes"), "")

	// Empty list: [] and a null cursor, never null.
	if convs, cur := appList(t, s.call(t, "GET", "/chat?limit=1", "", tok)); len(convs) != 0 || cur != "" {
		t.Fatalf("fresh user has %d conversations", len(convs))
	}
	if r := s.call(t, "GET", "/chat", "", tok); r.body != `{"conversations":[],"hasMore":false,"nextCursor":null}` {
		t.Fatalf("empty list body %s", r.body)
	}

	c := newConversation(t, uid)
	r := s.call(t, "POST", "/chat/"+c.ID+"/events", `{"role":"system","content":"✗ Denied: Bash, Write"}`, tok)
	if r.status != 200 || r.json(t)["success"] != true || r.json(t)["messageId"] == "" {
		t.Fatalf("event: %d %s", r.status, r.body)
	}
	r = s.call(t, "POST", "/chat/"+c.ID+"/events", `{"content":"default role"}`, tok)
	if r.status != 200 {
		t.Fatalf("event without role: %d %s", r.status, r.body)
	}

	convs, _ := appList(t, s.call(t, "GET", "/chat", "", tok))
	if len(convs) != 1 || convs[0]["id"] != c.ID || convs[0]["userId"] != uid ||
		convs[0]["title"] != nil || convs[0]["claudeSessionId"] != nil {
		t.Fatalf("list: %v", convs)
	}
	conv, msgs, cur := appDetail(t, s.call(t, "GET", "/chat/"+c.ID, "", tok))
	if conv["id"] != c.ID || len(msgs) != 3 || cur != "" {
		t.Fatalf("detail: %v %d", conv, len(msgs))
	}
	if msgs[0]["content"] != "hello" || msgs[1]["content"] != "✗ Denied: Bash, Write" || msgs[2]["role"] != "system" {
		t.Fatalf("messages out of order or wrong: %v", msgs)
	}
	// The event moved updatedAt to its own time.
	if requireDate(t, conv, "updatedAt") != requireDate(t, msgs[2], "createdAt") {
		t.Fatalf("updatedAt %v, last message %v", conv["updatedAt"], msgs[2]["createdAt"])
	}
}

func TestChatRejectsBadInput(t *testing.T) {
	s := newStack(t)
	tok, uid := s.signIn(t, uniqueSub("input"), "")
	c := newConversation(t, uid)
	long := strings.Repeat("é", ovrlrd.MaxMessage+1)
	cases := []struct {
		name, method, path, body string
		status                   int
		want                     string
	}{
		{"limit zero", "GET", "/chat?limit=0", "", 400, `{"error":"Query parameter \"limit\" must be an integer from 1 to 100."}`},
		{"limit 101", "GET", "/chat?limit=101", "", 400, `{"error":"Query parameter \"limit\" must be an integer from 1 to 100."}`},
		{"limit abc", "GET", "/chat/" + c.ID + "?limit=abc", "", 400, `{"error":"Query parameter \"limit\" must be an integer from 1 to 100."}`},
		{"forged cursor", "GET", "/chat?cursor=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "", 400, `{"error":"Invalid cursor."}`},
		{"garbage cursor", "GET", "/chat/" + c.ID + "?cursor=%FF%00", "", 400, `{"error":"Invalid cursor."}`},
		{"empty content", "POST", "/chat/" + c.ID + "/events", `{"content":""}`, 400, `{"error":"Field \"content\" is required."}`},
		{"missing content", "POST", "/chat/" + c.ID + "/events", `{"role":"system"}`, 400, `{"error":"Field \"content\" is required."}`},
		{"too long", "POST", "/chat/" + c.ID + "/events", `{"content":"` + long + `"}`, 400, `{"error":"Field \"content\" must be at most 100000 characters."}`},
		{"bad role", "POST", "/chat/" + c.ID + "/events", `{"role":"admin","content":"x"}`, 400, `{"error":"Field \"role\" must be \"user\", \"assistant\" or \"system\"."}`},
		{"unknown field", "POST", "/chat/" + c.ID + "/events", `{"content":"x","pinned":true}`, 400, `{"error":"Unknown field \"pinned\"."}`},
		{"no token", "GET", "/chat", "", 401, ``},
		{"doubled slash", "GET", "//chat//" + c.ID, "", 200, ``},
	}
	for _, k := range cases {
		t.Run(k.name, func(t *testing.T) {
			bearer := tok
			if k.name == "no token" {
				bearer = ""
			}
			r := s.call(t, k.method, k.path, k.body, bearer)
			if r.status != k.status || (k.want != "" && r.body != k.want) {
				t.Fatalf("got %d %s, want %d %s", r.status, r.body, k.status, k.want)
			}
		})
	}
}

// Another user's ids get exactly what a missing id gets, on every route.
func TestForeignConversationsAreNotFound(t *testing.T) {
	s := newStack(t)
	_, owner := s.signIn(t, uniqueSub("owner"), "")
	tok, _ := s.signIn(t, uniqueSub("intruder"), "")
	c := newConversation(t, owner)
	missing := "6f1c0000-0000-4000-8000-000000000000"
	for _, id := range []string{c.ID, missing, "not-a-uuid", strings.ToUpper(c.ID)} {
		for _, rt := range [][3]string{{"GET", "/chat/" + id, ""}, {"DELETE", "/chat/" + id, ""},
			{"POST", "/chat/" + id + "/events", `{"content":"x"}`}} {
			r := s.call(t, rt[0], rt[1], rt[2], tok)
			if r.status != 404 || r.body != `{"error":"Conversation not found"}` {
				t.Fatalf("%s %s: %d %s", rt[0], rt[1], r.status, r.body)
			}
		}
	}
	// Path traversal in an id reaches no route at all.
	for _, path := range []string{"/chat/..%2F..%2Fetc", "/chat/a%2Fb", "/chat/%2E%2E%2F" + c.ID} {
		if r := s.call(t, "GET", path, "", tok); r.status != 404 {
			t.Fatalf("GET %s: %d %s", path, r.status, r.body)
		}
	}
	// The owner's conversation is untouched.
	st := store.New(storetest.DB(), store.Options{Table: storetest.TableName()})
	msgs, _, err := st.Messages(context.Background(), c.ID, ovrlrd.Page{Limit: 10})
	if err != nil || len(msgs) != 1 {
		t.Fatalf("owner's messages: %d %v", len(msgs), err)
	}
}

// 250 messages written in the same millisecond: the first page, then "load
// earlier" until done, sees every message exactly once, oldest first within
// each page and each page older than the one before.
func TestPagingThroughMessagesWithOneTimestamp(t *testing.T) {
	s := newStack(t)
	tok, uid := s.signIn(t, uniqueSub("paging"), "")
	at := time.Now().Truncate(time.Millisecond)
	pinned := store.New(storetest.DB(), store.Options{Table: storetest.TableName(), Now: func() time.Time { return at }})
	c, _, err := storetest.NewConversation(context.Background(), pinned, uid, "0")
	if err != nil {
		t.Fatal(err)
	}
	const n = 250
	for i := 1; i < n; i++ {
		if _, err := pinned.AppendMessage(context.Background(), uid, c.ID, ovrlrd.RoleUser, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	var pages [][]map[string]any
	path := "/chat/" + c.ID
	for {
		_, msgs, cur := appDetail(t, s.call(t, "GET", path, "", tok))
		pages = append(pages, msgs)
		for _, m := range msgs {
			id := m["id"].(string)
			if seen[id] {
				t.Fatalf("message %s repeated", id)
			}
			seen[id] = true
		}
		if cur == "" {
			break
		}
		path = "/chat/" + c.ID + "?cursor=" + url.QueryEscape(cur)
	}
	if len(seen) != n || len(pages) != 5 {
		t.Fatalf("saw %d messages in %d pages", len(seen), len(pages))
	}
}

func TestPagingThroughConversations(t *testing.T) {
	s := newStack(t)
	tok, uid := s.signIn(t, uniqueSub("listing"), "")
	for range 45 {
		newConversation(t, uid)
	}
	seen := map[string]bool{}
	var last time.Time
	path := "/chat"
	for pages := 0; ; pages++ {
		convs, cur := appList(t, s.call(t, "GET", path, "", tok))
		for _, c := range convs {
			if seen[c["id"].(string)] {
				t.Fatal("conversation repeated")
			}
			seen[c["id"].(string)] = true
			u := requireDate(t, c, "updatedAt")
			if !last.IsZero() && u.After(last) {
				t.Fatal("list is not newest first")
			}
			last = u
		}
		if cur == "" {
			if pages != 2 {
				t.Fatalf("%d pages", pages+1)
			}
			break
		}
		path = "/chat?cursor=" + url.QueryEscape(cur)
	}
	if len(seen) != 45 {
		t.Fatalf("saw %d conversations", len(seen))
	}
}

// Deleting while another request appends leaves nothing behind: appends
// after the delete are refused and no message outlives its conversation.
// The delete comes once an append was accepted, and the appends go on
// until one was refused after it.
func TestDeleteWhileAppending(t *testing.T) {
	s := newStack(t, "RATE_LIMIT_WRITE", "100000/1m")
	tok, uid := s.signIn(t, uniqueSub("racing"), "")
	c := newConversation(t, uid)
	ctx := hangGuard(t)
	var (
		wg                sync.WaitGroup
		mu                sync.Mutex
		statuses          = map[int]int{}
		accepted, refused = make(chan struct{}), make(chan struct{})
		onceOK, onceGone  sync.Once
	)
	stop := make(chan struct{})
	halt := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer halt()
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := s.call(t, "POST", "/chat/"+c.ID+"/events", `{"content":"racing"}`, tok)
				mu.Lock()
				statuses[r.status]++
				mu.Unlock()
				switch r.status {
				case 200:
					onceOK.Do(func() { close(accepted) })
				case 404:
					onceGone.Do(func() { close(refused) })
				}
			}
		})
	}
	waitClosed(t, ctx, accepted, "an accepted append")
	if r := s.call(t, "DELETE", "/chat/"+c.ID, "", tok); r.status != 200 || r.body != `{"success":true}` {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	waitClosed(t, ctx, refused, "an append refused after the delete")
	halt()
	if statuses[404] == 0 || statuses[200] == 0 {
		t.Fatalf("the race did not happen: %v", statuses)
	}
	// The owner's repeated delete finishes whatever the first left.
	if r := s.call(t, "DELETE", "/chat/"+c.ID, "", tok); r.status != 200 {
		t.Fatalf("second delete: %d", r.status)
	}
	if n := partitionSize(t, "CONV#"+c.ID); n != 0 {
		t.Fatalf("%d items outlived their conversation", n)
	}
}

// waitClosed waits for ch to close, failing the test once ctx ends first.
func waitClosed(t *testing.T, ctx context.Context, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-ctx.Done():
		t.Fatalf("no %s", what)
	}
}

// partitionSize counts the items left in a partition.
func partitionSize(t *testing.T, pk string) int {
	t.Helper()
	var items []struct {
		PK string `dynamo:"PK"`
	}
	err := storetest.DB().Table(storetest.TableName()).Get("PK", pk).Consistent(true).All(context.Background(), &items)
	if err != nil {
		t.Fatal(err)
	}
	return len(items)
}

// total is the number of calls in counts.
func total(counts map[string]int) int {
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}

// firstByte records when a handler began its response.
type firstByte struct {
	http.ResponseWriter
	at *atomic.Pointer[time.Time]
}

func (w firstByte) mark() {
	now := time.Now()
	w.at.CompareAndSwap(nil, &now)
}
func (w firstByte) WriteHeader(code int)        { w.mark(); w.ResponseWriter.WriteHeader(code) }
func (w firstByte) Write(b []byte) (int, error) { w.mark(); return w.ResponseWriter.Write(b) }
func (w firstByte) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// What each route costs in DynamoDB calls once the session check is
// cached, and how many round trips its client waits for one after another
// before the response starts: one on every route here, whatever runs
// beside it (the rate limit, the conversation's read, the window's read).
func TestDynamoDBCallsPerRoute(t *testing.T) {
	base := newStack(t)
	var began atomic.Pointer[time.Time]
	s := *base
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		base.app.Handler().ServeHTTP(firstByte{w, &began}, r)
	}))
	t.Cleanup(s.Server.Close)
	tok, uid := s.signIn(t, uniqueSub("cost"), "")
	c := newConversation(t, uid)
	idle := newConversation(t, uid)
	s.call(t, "GET", "/chat?limit=1", "", tok) // caches the session check
	cases := []struct {
		name, method, path, body string
		want                     map[string]int
	}{
		{"list", "GET", "/chat", "", map[string]int{"Query": 1, "UpdateItem": 1}},
		// The messages, the running turn and the requests it waits on are
		// read beside the conversation.
		{"detail", "GET", "/chat/" + c.ID, "", map[string]int{"GetItem": 2, "Query": 2, "UpdateItem": 1}},
		{"event", "POST", "/chat/" + c.ID + "/events", `{"content":"x"}`, map[string]int{"GetItem": 1, "TransactWriteItems": 1}},
		{"missing detail", "GET", "/chat/6f1c0000-0000-4000-8000-000000000000", "", map[string]int{"GetItem": 2, "Query": 2, "UpdateItem": 1}},
		// Before the first byte: the start's transaction, the window's read
		// and, for an existing conversation, its read.
		{"new turn", "POST", "/chat/stream", `{"message":"hi"}`, map[string]int{"GetItem": 1, "TransactWriteItems": 1}},
		{"turn", "POST", "/chat/" + idle.ID + "/stream", `{"message":"hi"}`, map[string]int{"GetItem": 2, "TransactWriteItems": 1}},
	}
	for _, k := range cases {
		s.calls.Take()
		s.calls.Hold(total(k.want))
		began.Store(nil)
		if r := s.call(t, k.method, k.path, k.body, tok); r.status >= 500 {
			t.Fatalf("%s: %d", k.name, r.status)
		}
		got, sequential := s.calls.Waited(*began.Load())
		if fmt.Sprint(got) != fmt.Sprint(k.want) || sequential != 1 {
			t.Errorf("%s: before the response, calls %v in %d round trips, want %v in 1", k.name, got, sequential, k.want)
		}
	}
	// A session the instance has not checked yet adds one round trip.
	fresh, _ := s.signIn(t, uniqueSub("cost"), "")
	s.calls.Take()
	began.Store(nil)
	s.call(t, "GET", "/chat", "", fresh)
	if _, sequential := s.calls.Waited(*began.Load()); sequential != 2 {
		t.Errorf("an unchecked session: %d round trips, want 2", sequential)
	}
}

// The app's launch check must never be refused by the read limit in normal
// use: 120 quick reads in a row all pass.
func TestReadLimitIsGenerous(t *testing.T) {
	s := newStack(t)
	tok, _ := s.signIn(t, uniqueSub("launch"), "")
	for i := range 120 {
		if r := s.call(t, "GET", "/chat?limit=1", "", tok); r.status != 200 {
			t.Fatalf("read %d: %d", i, r.status)
		}
	}
}

func TestDeviceRoutes(t *testing.T) {
	s := newStack(t)
	tok, uid := s.signIn(t, uniqueSub("devices"), "")
	hex := strings.Repeat("ab", 32)
	cases := []struct {
		name, method, path, body string
		status                   int
		want                     string
	}{
		{"register", "POST", "/devices", `{"deviceToken":"` + hex + `"}`, 204, ""},
		{"refresh with environment", "POST", "/devices", `{"deviceToken":"` + hex + `","environment":"production"}`, 204, ""},
		{"missing token", "POST", "/devices", `{}`, 400, `{"error":"Field \"deviceToken\" is required."}`},
		{"uppercase hex", "POST", "/devices", `{"deviceToken":"` + strings.ToUpper(hex) + `"}`, 400,
			`{"error":"Field \"deviceToken\" must be the device token in lowercase hex."}`},
		{"odd length", "POST", "/devices", `{"deviceToken":"` + hex + `a"}`, 400,
			`{"error":"Field \"deviceToken\" must be the device token in lowercase hex."}`},
		{"too short", "POST", "/devices", `{"deviceToken":"abcd"}`, 400,
			`{"error":"Field \"deviceToken\" must be the device token in lowercase hex."}`},
		{"bad environment", "POST", "/devices", `{"deviceToken":"` + hex + `","environment":"staging"}`, 400,
			`{"error":"Field \"environment\" must be \"sandbox\" or \"production\"."}`},
		{"wrong type", "POST", "/devices", `{"deviceToken":42}`, 400, `{"error":"Field \"deviceToken\" must be of type string."}`},
	}
	for _, k := range cases {
		r := s.call(t, k.method, k.path, k.body, tok)
		if r.status != k.status || r.body != k.want {
			t.Fatalf("%s: got %d %s, want %d %s", k.name, r.status, r.body, k.status, k.want)
		}
	}
	st := store.New(storetest.DB(), store.Options{Table: storetest.TableName()})
	devs, _ := st.Devices(context.Background(), uid)
	if len(devs) != 2 { // one from sign-in, one registered here
		t.Fatalf("devices %+v", devs)
	}
	if r := s.call(t, "DELETE", "/devices/"+hex, "", tok); r.status != 204 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if r := s.call(t, "DELETE", "/devices/"+hex, "", tok); r.status != 204 {
		t.Fatalf("delete again: %d %s", r.status, r.body)
	}
	if devs, _ := st.Devices(context.Background(), uid); len(devs) != 1 {
		t.Fatalf("after delete %+v", devs)
	}
}
