package app_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/devkit/anthropicfake"
	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// A session too large to send inline goes to S3 first, through a presigned
// PUT, and is imported from there; the upload is gone once imported, and
// is its user's alone.
func TestImportThroughAnUpload(t *testing.T) {
	model := anthropicfake.New(anthropicfake.Commands())
	t.Cleanup(model.Close)
	id, data := claudetest.DeskSession(t, model.URL, "hello from a large session")
	s := newStack(t, "RATE_LIMIT_TURN", "3/1m")
	tok, _ := s.signIn(t, uniqueSub("upload"), "")
	other, _ := s.signIn(t, uniqueSub("upload-other"), "")

	r := s.call(t, "POST", "/chat/import/uploads", `{"size":`+strconv.Itoa(len(data))+`}`, tok)
	var u struct {
		UploadID, URL, Method, ExpiresAt string
		Headers                          map[string]string
	}
	if err := json.Unmarshal([]byte(r.body), &u); r.status != 200 || err != nil || u.Method != "PUT" || u.ExpiresAt == "" {
		t.Fatalf("POST /chat/import/uploads: %d %s", r.status, r.body)
	}
	req, _ := http.NewRequest(u.Method, u.URL, bytes.NewReader(data))
	for k, v := range u.Headers {
		if k != "Content-Length" { // req.ContentLength sends it
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}

	byUpload := `{"sessionId":` + jsonString(id) + `,"uploadId":` + jsonString(u.UploadID) + `,"title":" Two\n lines "}`
	if r := s.call(t, "POST", "/chat/import", byUpload, other); r.status != http.StatusNotFound {
		t.Fatalf("another user's upload: %d %s", r.status, r.body)
	}
	r = s.call(t, "POST", "/chat/import", byUpload, tok)
	got := r.json(t)
	if r.status != 200 || got["messageCount"].(float64) < 2 || got["title"] != "Two lines" {
		t.Fatalf("import from the upload: %d %s", r.status, r.body)
	}
	_, msgs, _ := appDetail(t, s.call(t, "GET", "/chat/"+got["conversationId"].(string), "", tok))
	if len(msgs) != int(got["messageCount"].(float64)) || !strings.Contains(msgs[0]["content"].(string), "hello from a large session") {
		t.Fatalf("messages %v", msgs)
	}
	// Once imported, the session is claimed: a retry learns its
	// conversation without reading the upload, which is gone.
	if r := s.call(t, "POST", "/chat/import", byUpload, tok); r.status != http.StatusConflict || !strings.Contains(r.body, got["conversationId"].(string)) {
		t.Fatalf("the upload again, once imported: %d %s", r.status, r.body)
	}
	// Uploads and imports count as turns do: this is the user's fourth.
	if r := s.call(t, "POST", "/chat/import/uploads", `{"size":10}`, tok); r.status != http.StatusTooManyRequests {
		t.Fatalf("past the turn limit: %d %s", r.status, r.body)
	}
}

// Every refusal of an import, with its status, and nothing written by any.
func TestImportRefusals(t *testing.T) {
	model := anthropicfake.New(anthropicfake.Commands())
	t.Cleanup(model.Close)
	id, data := claudetest.DeskSession(t, model.URL, "hello from the desk")
	// A conversation's folder of 2 MiB keeps a transcript of 1 MiB.
	s := newStack(t, "RATE_LIMIT_TURN", "100/1m", "WORKSPACE_MAX_MB", "2")
	tok, _ := s.signIn(t, uniqueSub("refusals"), "")
	lines := strings.SplitAfter(string(data), "\n")
	badLine := strings.Join(append(append([]string{}, lines[0]), append([]string{"{not json\n"}, lines[1:]...)...), "")
	huge := strings.Repeat("x", ovrlrd.MaxInlineTranscript+1)

	for _, c := range []struct {
		name, body string
		status     int
		says       string
	}{
		{"a session id that is not a UUID", importBody("../../etc", data, ""), 400, "UUID"},
		{"a session id longer than a key", importBody(strings.Repeat("a", 2000), data, ""), 400, "UUID"},
		{"another session's transcript", importBody("0b5e3f8a-8c1d-4f3e-9a2b-1c2d3e4f5a6b", data, ""), 400, "Line"},
		{"a malformed line", importBody(id, []byte(badLine), ""), 400, "Line 2"},
		{"no messages", importBody(id, []byte("\n\n"), ""), 400, "no messages"},
		{"neither transcript nor upload", `{"sessionId":` + jsonString(id) + `}`, 400, "Exactly one"},
		{"both transcript and upload", importBody(id, data, `,"uploadId":"x"`), 400, "Exactly one"},
		{"an unknown field", importBody(id, data, `,"sessionPath":"/Users/me/.claude"`), 400, "sessionPath"},
		{"a missing upload", `{"sessionId":` + jsonString(id) + `,"uploadId":"2b0c4f1e-5d6a-4b7c-8d9e-0f1a2b3c4d5e"}`, 404, "Upload not found"},
		// A server without projects (no KMS key) keeps no checkout to make.
		{"a project on a server without projects", importBody(id, data, `,"projectId":"2b0c4f1e-5d6a-4b7c-8d9e-0f1a2b3c4d5e"`), 404, "Projects are not enabled"},
		{"a title too long", importBody(id, data, `,"title":`+jsonString(strings.Repeat("t", 201))), 400, "title"},
		{"a title with a control character", importBody(id, data, `,"title":"a\u0007bell"`), 400, "title"},
		{"an empty upload id", `{"sessionId":` + jsonString(id) + `,"uploadId":""}`, 400, "uploadId"},
		{"an empty session id", importBody("", data, ""), 400, "sessionId"},
		{"a transcript above 5 MB", importBody(id, []byte(huge), ""), 413, "upload"},
		{"a transcript above what a folder keeps", importBody(id, []byte(strings.Repeat("x", 1<<20+1)), ""), 413, "at most 1048576 bytes"},
		// Refused before the function, as Lambda refuses such an invocation.
		{"a body above 6 MiB", importBody(id, []byte(strings.Repeat(`"`, 3<<20+1)), ""), 413, "Too Large"},
	} {
		r := s.call(t, "POST", "/chat/import", c.body, tok)
		if r.status != c.status || !strings.Contains(r.body, c.says) {
			t.Errorf("%s: %d %.200s", c.name, r.status, r.body)
		}
	}
	for _, c := range []struct {
		body   string
		status int
	}{
		{`{}`, 400},
		{`{"size":0}`, 400},
		{`{"size":"big"}`, 400},
		{`{"size":100000001}`, 413},
		{`{"size":1048577}`, 413},
	} {
		if r := s.call(t, "POST", "/chat/import/uploads", c.body, tok); r.status != c.status {
			t.Errorf("upload %s: %d %s", c.body, r.status, r.body)
		}
	}
	if r := s.call(t, "POST", "/chat/import", importBody(id, data, ""), ""); r.status != 401 {
		t.Errorf("without a session: %d %s", r.status, r.body)
	}
	if r := s.call(t, "POST", "/chat/import/uploads", `{"size":10}`, ""); r.status != 401 {
		t.Errorf("an upload without a session: %d %s", r.status, r.body)
	}
	// None of them left a conversation, and the session still imports.
	if list := s.call(t, "GET", "/chat", "", tok).json(t)["conversations"].([]any); len(list) != 0 {
		t.Fatalf("refused imports left %v", list)
	}
	if r := s.call(t, "POST", "/chat/import", importBody(id, data, ""), tok); r.status != 200 {
		t.Fatalf("the import after the refusals: %d %s", r.status, r.body)
	}
}
