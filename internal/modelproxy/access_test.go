package modelproxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

const msgBody = `{"model":"claude-sonnet-4-5","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}`

// TestTokenRefusedAfterClose: a session's token works until Session.Close,
// then gets a small JSON 401 that names no credential, and nothing more
// reaches the upstream.
func TestTokenRefusedAfterClose(t *testing.T) {
	up := newUpstream(t, nil)
	p := newProxy(t, Options{Provider: ovrlrd.Anthropic, Upstream: up.URL, Credential: realKey})
	s := open(t, p)
	if r := send(t, "POST", s.BaseURL()+"/v1/messages?beta=true", msgBody, nil); r.status != 200 {
		t.Fatalf("open session: status %d %s", r.status, r.body)
	}
	s.Close()
	r := send(t, "POST", s.BaseURL()+"/v1/messages?beta=true", msgBody, nil)
	if r.status != http.StatusUnauthorized || !strings.Contains(r.body, `"authentication_error"`) {
		t.Fatalf("closed session: status %d body %s", r.status, r.body)
	}
	if strings.Contains(r.body, realKey) || len(r.body) > 200 {
		t.Errorf("401 body says too much: %s", r.body)
	}
	if n := len(up.seen()); n != 1 {
		t.Errorf("upstream saw %d requests, want 1", n)
	}
}

// TestSessionEndsWithContext: cancelling Open's context ends the session
// like Close does.
func TestSessionEndsWithContext(t *testing.T) {
	up := newUpstream(t, nil)
	p := newProxy(t, Options{Provider: ovrlrd.Anthropic, Upstream: up.URL, Credential: realKey})
	ctx, cancel := context.WithCancel(context.Background())
	s, err := p.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if r := send(t, "HEAD", s.BaseURL(), "", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("after cancel: status %d", r.status)
	}
}

// TestWrongToken: unknown, truncated, empty and missing tokens get 401,
// and another session's token does not open this one.
func TestWrongToken(t *testing.T) {
	up := newUpstream(t, nil)
	p := newProxy(t, Options{Provider: ovrlrd.Anthropic, Upstream: up.URL, Credential: realKey})
	s := open(t, p)
	if len(s.Token()) < 26 { // 128 bits of base32
		t.Fatalf("token %d characters, want at least 26", len(s.Token()))
	}
	if other := open(t, p); other.Token() == s.Token() {
		t.Fatal("two sessions share a token")
	}
	root := strings.TrimSuffix(s.BaseURL(), "/t/"+s.Token())
	for _, path := range []string{
		"/t/wrong/v1/messages",
		"/t/" + s.Token()[:len(s.Token())-1] + "/v1/messages",
		"/t//v1/messages",
		"/v1/messages",
		"/t/" + s.Token() + "x/v1/messages",
	} {
		if r := send(t, "POST", root+path, msgBody, nil); r.status != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", path, r.status)
		}
	}
	if n := len(up.seen()); n != 0 {
		t.Errorf("upstream saw %d requests, want 0", n)
	}
}

// TestNonLoopbackRefused: a request from a non-loopback address gets 403
// even with a valid token; the same request from loopback goes through.
func TestNonLoopbackRefused(t *testing.T) {
	up := newUpstream(t, nil)
	p := newProxy(t, Options{Provider: ovrlrd.Anthropic, Upstream: up.URL, Credential: realKey})
	s := open(t, p)
	for _, addr := range []string{"203.0.113.7:4242", "[2001:db8::1]:443", "10.0.0.1:80", "garbage"} {
		req := httptest.NewRequest("POST", s.BaseURL()+"/v1/messages", strings.NewReader(msgBody))
		req.RemoteAddr = addr
		rec := httptest.NewRecorder()
		p.serveHTTP(rec, req)
		if rec.Code != http.StatusForbidden {
			t.Errorf("from %s: status %d, want 403", addr, rec.Code)
		}
	}
	if n := len(up.seen()); n != 0 {
		t.Fatalf("upstream saw %d requests from non-loopback clients", n)
	}
	req := httptest.NewRequest("POST", s.BaseURL()+"/v1/messages", strings.NewReader(msgBody))
	req.RemoteAddr = "127.0.0.1:5555"
	rec := httptest.NewRecorder()
	p.serveHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Errorf("from loopback: status %d, want 200", rec.Code)
	}
}

// TestPathAllowList: only the provider's model calls are forwarded, with
// the token prefix removed and the query kept; HEAD / is answered locally.
func TestPathAllowList(t *testing.T) {
	cases := []struct {
		provider     ovrlrd.Provider
		method, path string
		status       int
		upstream     string // the path and query the upstream sees; "" = not forwarded
	}{
		{ovrlrd.Anthropic, "HEAD", "", 200, ""},
		{ovrlrd.Anthropic, "HEAD", "/", 200, ""},
		{ovrlrd.Anthropic, "POST", "/v1/messages?beta=true", 200, "/v1/messages?beta=true"},
		{ovrlrd.Anthropic, "POST", "/v1/messages/count_tokens?beta=true", 200, "/v1/messages/count_tokens?beta=true"},
		{ovrlrd.Anthropic, "GET", "/v1/messages", 404, ""},
		{ovrlrd.Anthropic, "GET", "/", 404, ""},
		{ovrlrd.Anthropic, "POST", "/v1/models", 404, ""},
		{ovrlrd.Anthropic, "POST", "/v1/messages/batches", 404, ""},
		{ovrlrd.Anthropic, "POST", "/v1/messages/../complete", 404, ""},
		{ovrlrd.Anthropic, "POST", "/v1/%6dessages", 404, ""},
		{ovrlrd.Anthropic, "POST", "/model/x/invoke", 404, ""},
		{ovrlrd.OAuth, "POST", "/v1/messages?beta=true", 200, "/v1/messages?beta=true"},
		{ovrlrd.OAuth, "POST", "/api/oauth/profile", 404, ""},
		{ovrlrd.Bedrock, "POST", "/model/us.anthropic.claude-sonnet-4-5-20250929-v1:0/invoke-with-response-stream", 200,
			"/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke-with-response-stream"},
		{ovrlrd.Bedrock, "POST", "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke", 200,
			"/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke"},
		{ovrlrd.Bedrock, "GET", "/inference-profiles?type=SYSTEM_DEFINED", 200, "/inference-profiles?type=SYSTEM_DEFINED"},
		{ovrlrd.Bedrock, "HEAD", "/", 404, ""},
		{ovrlrd.Bedrock, "POST", "/v1/messages", 404, ""},
		{ovrlrd.Bedrock, "GET", "/model/x/invoke", 404, ""},
		{ovrlrd.Bedrock, "POST", "/model/x/converse", 404, ""},
		{ovrlrd.Bedrock, "POST", "/model/../invoke", 404, ""},
		{ovrlrd.Bedrock, "POST", "/model/a%2F..%2Fb/invoke", 404, ""},
		{ovrlrd.Bedrock, "POST", "/model//invoke", 404, ""},
		{ovrlrd.Bedrock, "GET", "/foundation-models", 404, ""},
	}
	for _, c := range cases {
		up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
		o := Options{Provider: c.provider, Upstream: up.URL, Credential: realKey}
		if c.provider == ovrlrd.Bedrock {
			o = Options{Provider: ovrlrd.Bedrock, Upstream: up.URL, Region: "us-east-1", AWSCredentials: testCreds()}
		}
		p := newProxy(t, o)
		s := open(t, p)
		body := ""
		if c.method == "POST" {
			body = msgBody
		}
		r := send(t, c.method, s.BaseURL()+c.path, body, nil)
		if r.status != c.status {
			t.Errorf("%s %s %s: status %d, want %d (%s)", c.provider, c.method, c.path, r.status, c.status, r.body)
		}
		got := ""
		if reqs := up.seen(); len(reqs) == 1 {
			got = reqs[0].RawPath
			if got == "" {
				got = reqs[0].Path
			}
			if reqs[0].Query != "" {
				got += "?" + reqs[0].Query
			}
		} else if len(reqs) > 1 {
			got = "several requests"
		}
		if got != c.upstream {
			t.Errorf("%s %s %s: upstream saw %q, want %q", c.provider, c.method, c.path, got, c.upstream)
		}
		p.Close()
	}
}

// TestBodyLimit: a body over MaxBody gets 413 whether its length is
// declared or chunked, and never reaches the upstream; MaxBody itself
// passes.
func TestBodyLimit(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	p := newProxy(t, Options{Provider: ovrlrd.Anthropic, Upstream: up.URL, Credential: realKey})
	s := open(t, p)
	post := func(n int64, chunked bool) int {
		var body io.Reader = io.LimitReader(zeros{}, n)
		if !chunked {
			body = strings.NewReader(strings.Repeat("a", int(n)))
		}
		req, _ := http.NewRequest("POST", s.BaseURL()+"/v1/messages", body)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post(MaxBody+1, false); got != http.StatusRequestEntityTooLarge {
		t.Errorf("declared length over the limit: %d", got)
	}
	if got := post(MaxBody+1, true); got != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked body over the limit: %d", got)
	}
	if n := len(up.seen()); n != 0 {
		t.Fatalf("upstream saw %d oversized requests", n)
	}
	if got := post(MaxBody, true); got != 200 {
		t.Errorf("body of exactly MaxBody: %d", got)
	}
	if reqs := up.seen(); len(reqs) != 1 || len(reqs[0].Body) != MaxBody {
		t.Errorf("upstream did not get the whole MaxBody body")
	}
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) { clear(b); return len(b), nil }
