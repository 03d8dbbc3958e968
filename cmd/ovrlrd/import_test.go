package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// eventSize is what body takes in the Lambda event: a JSON string.
func eventSize(body []byte) int {
	b, _ := json.Marshal(string(body))
	return len(b)
}

// The inline path is taken while the transcript is at most 5 MB and the
// body, escaped once more into the Lambda event, leaves 64 KiB of the
// 6 MiB payload.
func TestSendInline(t *testing.T) {
	body := func(transcript string) []byte {
		b, err := importRequest{SessionID: sessionA, Transcript: transcript, ProjectID: "p", Title: "t"}.encode()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	check := func(name, transcript string, want bool) {
		t.Helper()
		if got := len(transcript) <= ovrlrd.MaxInlineTranscript && sendInline(body(transcript)); got != want {
			t.Errorf("%s (%d bytes, event %d): inline %v, want %v", name, len(transcript), eventSize(body(transcript)), got, want)
		}
	}
	check("small", "{}\n", true)
	// Plain text: the 5 MB bound comes first.
	check("5 MB", strings.Repeat("a", ovrlrd.MaxInlineTranscript), true)
	check("5 MB and a byte", strings.Repeat("a", ovrlrd.MaxInlineTranscript+1), false)
	// <, > and & are not escaped in the body: a transcript of tags is no
	// larger sent than read.
	if b := body(strings.Repeat("<", 1000)); len(b) > 1100 {
		t.Errorf("a body of 1000 '<' is %d bytes", len(b))
	}
	// Backslashes double in the body and double again in the event: well
	// under 5 MB, the event decides. Its size grows by one per letter
	// added, so the boundary is found exactly.
	slashes := strings.Repeat(`\`, 1_200_000)
	letters := lambdaPayload - eventOverhead - eventSize(body(slashes))
	if letters <= 0 || len(slashes)+letters > ovrlrd.MaxInlineTranscript {
		t.Fatalf("the boundary case is out of range: %d letters", letters)
	}
	check("escaped, at the limit", slashes+strings.Repeat("a", letters), true)
	check("escaped, a byte over", slashes+strings.Repeat("a", letters+1), false)
	// Quotes as well.
	check("3 MB of quotes", strings.Repeat(`"`, 3_000_000), false)
}

// The upload is a PUT of exactly the signed length, with the headers the
// server named and no credential of the API's.
func TestPut(t *testing.T) {
	var got *http.Request
	var gotBody []byte
	s3 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, gotBody = r, must(io.ReadAll(r.Body))
		if r.URL.Query().Get("fail") != "" {
			w.WriteHeader(http.StatusForbidden)
		}
	}))
	defer s3.Close()
	data := []byte("the transcript\n")
	u := upload{UploadID: "u", URL: s3.URL + "/uploads/x?X-Amz-Signature=abc", Method: "PUT", Headers: map[string]string{"Content-Length": "15"}}
	if err := put(context.Background(), http.DefaultClient, u, data); err != nil {
		t.Fatal(err)
	}
	if got.Method != "PUT" || got.ContentLength != 15 || string(gotBody) != string(data) ||
		got.Header.Get("Authorization") != "" || got.Header.Get("X-API-Key") != "" || got.Header.Get("Content-Type") != "" {
		t.Errorf("PUT %s, length %d, headers %v, body %q", got.Method, got.ContentLength, got.Header, gotBody)
	}

	u.URL += "&fail=1"
	if err := put(context.Background(), http.DefaultClient, u, data); err == nil || !strings.Contains(err.Error(), "HTTP 403") || strings.Contains(err.Error(), "Signature") {
		t.Errorf("a refused upload: %v", err)
	}
	u.Headers["Content-Length"] = "16"
	if err := put(context.Background(), http.DefaultClient, u, data); err == nil || !strings.Contains(err.Error(), "length") {
		t.Errorf("another length: %v", err)
	}
	u.Headers, u.Method = nil, "POST"
	if err := put(context.Background(), http.DefaultClient, u, data); err == nil {
		t.Error("a POST upload was sent")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// --project names a project; its id is what the import sends. The API's
// errors reach the user as "<message> (HTTP <status>)".
func TestProjectID(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("X-API-Key") != "key" || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"Unauthorized"}`)
			return
		}
		io.WriteString(w, `{"projects":[{"id":"p1","name":"demo","createdAt":"2026-03-01T10:00:00.000Z"},{"id":"p2","name":"site","label":null}]}`)
	}))
	defer api.Close()
	c := newClient(&settings{url: api.URL, apiKey: "key", token: "tok"})
	if id, err := projectID(context.Background(), c, "site"); err != nil || id != "p2" {
		t.Errorf("site: %q, %v", id, err)
	}
	if _, err := projectID(context.Background(), c, "Site"); err == nil || err.Error() != `project "Site" not found; yours are "demo", "site"` {
		t.Errorf("Site: %v", err)
	}
	c.token = "other"
	if _, err := projectID(context.Background(), c, "site"); err == nil || !strings.HasSuffix(err.Error(), "Unauthorized (HTTP 401); run ovrlrd login with a new session token") {
		t.Errorf("refused: %v", err)
	}
}

// The refresh is POST /auth/refresh with the old token and no body; a
// token far from its expiry is not refreshed.
func TestRefreshRequest(t *testing.T) {
	var calls []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		calls = append(calls, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization")+" "+r.Header.Get("Content-Type")+" "+string(body))
		if r.URL.Path == "/auth/refresh" {
			io.WriteString(w, `{"sessionToken":"new","userId":"u","expiresIn":86400}`)
		}
	}))
	defer api.Close()
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var kept string
	var keptExpiry time.Time
	c := newClient(&settings{url: api.URL, token: "old", expiry: now.Add(299 * time.Second)})
	c.now = func() time.Time { return now }
	c.renew = func(ctx context.Context, token string, rotate rotator) (string, time.Time, error) {
		var err error
		kept, keptExpiry, err = rotate(ctx, token)
		return kept, keptExpiry, err
	}
	if err := c.call(context.Background(), "GET", "/chat", callTimeout, nil, nil); err != nil {
		t.Fatal(err)
	}
	want := []string{"POST /auth/refresh Bearer old application/json ", "GET /chat Bearer new application/json "}
	if strings.Join(calls, "|") != strings.Join(want, "|") || kept != "new" || !keptExpiry.Equal(now.Add(24*time.Hour)) {
		t.Errorf("calls %q, kept %q until %v", calls, kept, keptExpiry)
	}
	calls = nil
	c.expiry = now.Add(301 * time.Second)
	if err := c.call(context.Background(), "GET", "/chat", callTimeout, nil, nil); err != nil || len(calls) != 1 {
		t.Errorf("calls %q, %v", calls, err)
	}
}

// The presigned address must be https, or http to this machine only.
func TestPutNeedsHTTPS(t *testing.T) {
	for _, raw := range []string{"http://bucket.example.com/x", "http://10.0.0.2/x", "ftp://bucket.example.com/x", "https:///x"} {
		if err := put(t.Context(), http.DefaultClient, upload{URL: raw}, nil); err == nil || !strings.Contains(err.Error(), "not an https URL") {
			t.Errorf("%s: %v", raw, err)
		}
	}
}

// importAPI serves /chat/import (413 for an inline one when tooLarge)
// and the upload route, its PUT target on the same server, and keeps the
// requests' paths.
func importAPI(t *testing.T, tooLarge bool) (*fakeAPI, *client) {
	api := newFakeAPI(t)
	api.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		api.mu.Lock()
		api.calls = append(api.calls, fmt.Sprintf("%s %s %d", r.Method, r.URL.Path, n))
		api.mu.Unlock()
		switch {
		case r.URL.Path == "/chat/import/uploads":
			fmt.Fprintf(w, `{"uploadId":"u1","url":%q,"method":"PUT"}`, api.URL+"/put")
		case r.URL.Path == "/put":
		case tooLarge && n > 100:
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			io.WriteString(w, `{"message":"Request Entity Too Large"}`)
		default:
			io.WriteString(w, `{"conversationId":"c1","messageCount":2}`)
		}
	})
	return api, newClient(&settings{url: api.URL, token: "t"})
}

// A transcript larger than the server takes inline is uploaded without
// being made into an inline request first: no copy of it is made.
func TestImportLargeGoesStraightToUpload(t *testing.T) {
	api, c := importAPI(t, false)
	data := []byte(strings.Repeat("x", ovrlrd.MaxInlineTranscript+1))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	got, err := importSession(t.Context(), c, importRequest{SessionID: sessionA}, data, false)
	runtime.ReadMemStats(&after)
	if err != nil || got.ConversationID != "c1" {
		t.Fatal(got, err)
	}
	if want := fmt.Sprintf("POST /chat/import/uploads 16|PUT /put %d|POST /chat/import ", len(data)); !strings.HasPrefix(api.got(), want) {
		t.Errorf("calls %q", api.got())
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > uint64(len(data)/2) {
		t.Errorf("%d bytes allocated for a transcript of %d", n, len(data))
	}
}

// An inline import refused as too large (API Gateway's own answer) is
// uploaded instead, once.
func TestImportTooLargeInlineFallsBack(t *testing.T) {
	api, c := importAPI(t, true)
	data := []byte(strings.Repeat("y", 1000))
	if got, err := importSession(t.Context(), c, importRequest{SessionID: sessionA}, data, false); err != nil || got.ConversationID != "c1" {
		t.Fatal(got, err)
	}
	if !strings.HasPrefix(api.got(), "POST /chat/import 10") || !strings.Contains(api.got(), "|POST /chat/import/uploads 13|PUT /put 1000|POST /chat/import ") {
		t.Errorf("calls %q", api.got())
	}
}

// The answers a user can act on say how: sign in again, or when to come
// back; API Gateway's {"message"} is read as the API's {"error"}.
func TestAnswerError(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.Local)
	h := http.Header{}
	for _, tc := range []struct {
		status int
		retry  string
		body   string
		want   string
	}{
		{401, "", `{"error":"Unauthorized"}`, "Unauthorized (HTTP 401); run ovrlrd login with a new session token"},
		{429, "120", `{"message":"Too Many Requests"}`, "Too Many Requests (HTTP 429); try again after 2026-03-01 10:02:00"},
		{429, "Sun, 01 Mar 2026 09:05:00 GMT", `x`, "Too Many Requests (HTTP 429); try again after " + time.Date(2026, 3, 1, 9, 5, 0, 0, time.UTC).Local().Format(time.DateTime)},
		{429, "", ``, "Too Many Requests (HTTP 429); try again later"},
		{502, "", `{"message":"Internal server error"}`, "Internal server error (HTTP 502)"},
		{409, "", `{"error":"Taken \u001b[2J."}`, `Taken \x1b[2J. (HTTP 409)`},
	} {
		h.Set("Retry-After", tc.retry)
		if got := answerError(tc.status, h, []byte(tc.body), now).Error(); got != tc.want {
			t.Errorf("%d %q: %q, want %q", tc.status, tc.body, got, tc.want)
		}
	}
}

// --title is checked before anything is read or sent, as the server
// would: one line, 200 characters, no control characters.
func TestCheckTitle(t *testing.T) {
	for in, want := range map[string]string{
		"":                            "",
		"  A\ttitle\n on two lines  ": "A title on two lines",
		strings.Repeat("é", 200):      strings.Repeat("é", 200),
	} {
		if got, err := checkTitle(in); err != nil || got != want {
			t.Errorf("checkTitle(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{strings.Repeat("a", 201), "bell\a", "esc\x1b[2J", " \t "} {
		if _, err := checkTitle(in); err == nil {
			t.Errorf("checkTitle(%q) passed", in)
		}
	}
	d := newDesk(t)
	d.claude = filepath.Join(d.home, "missing")
	if r := d.run(t, "import", "--url", "https://api.example.com", "--token", "t", "--title", "esc\x1b", sessionA); r.code != 1 || !strings.Contains(r.stderr, "control character") {
		t.Errorf("import: %+v", r)
	}
}
