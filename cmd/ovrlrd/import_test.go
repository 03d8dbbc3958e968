package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
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
		if got := sendInline(len(transcript), body(transcript)); got != want {
			t.Errorf("%s (%d bytes, event %d): inline %v, want %v", name, len(transcript), eventSize(body(transcript)), got, want)
		}
	}
	check("small", "{}\n", true)
	// Plain text: the 5 MB bound comes first.
	check("5 MB", strings.Repeat("a", maxInline), true)
	check("5 MB and a byte", strings.Repeat("a", maxInline+1), false)
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
	if letters <= 0 || len(slashes)+letters > maxInline {
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
	if _, err := projectID(context.Background(), c, "site"); err == nil || !strings.HasSuffix(err.Error(), "Unauthorized (HTTP 401)") {
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
	c.keep = func(tok string, exp time.Time) error { kept, keptExpiry = tok, exp; return nil }
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
