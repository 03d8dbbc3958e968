package modelproxy

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ovrlrd/cloud/internal/devkit/devenv"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// TestCredentialReplaced: whatever credentials the client sends, the
// upstream sees the operator's API key and never the session token.
func TestCredentialReplaced(t *testing.T) {
	up := newUpstream(t, nil)
	var logs devenv.Buffer
	p := newProxy(t, Options{Provider: ovrlrd.Anthropic, Upstream: up.URL, Credential: realKey, Log: logger(&logs)})
	s := open(t, p)
	r := send(t, "POST", s.BaseURL()+"/v1/messages?beta=true", msgBody, map[string]string{
		"X-Api-Key":            s.Token(),
		"Authorization":        "Bearer " + s.Token(),
		"Cookie":               "session=" + s.Token(),
		"X-Amz-Security-Token": s.Token(),
		"Anthropic-Version":    "2023-06-01",
		"Accept-Encoding":      "gzip, deflate, br, zstd",
	})
	if r.status != 200 || strings.Contains(r.body, realKey) {
		t.Fatalf("status %d body %s", r.status, r.body)
	}
	reqs := up.seen()
	if len(reqs) != 1 {
		t.Fatalf("upstream saw %d requests", len(reqs))
	}
	h := reqs[0].Header
	if h.Get("X-Api-Key") != realKey || len(h.Values("X-Api-Key")) != 1 {
		t.Errorf("upstream x-api-key = %q", h.Values("X-Api-Key"))
	}
	if h.Get("Authorization") != "" || h.Get("Cookie") != "" {
		t.Errorf("client credentials forwarded: Authorization %q Cookie %q", h.Get("Authorization"), h.Get("Cookie"))
	}
	if h.Get("Anthropic-Version") != "2023-06-01" {
		t.Errorf("anthropic-version not forwarded")
	}
	if ae := h.Get("Accept-Encoding"); ae != "gzip" {
		t.Errorf("upstream Accept-Encoding = %q, want the transport's own gzip", ae)
	}
	assertNoToken(t, reqs, s.Token())
	send(t, "POST", s.BaseURL()+"/v1/nope", msgBody, nil)
	if out := logs.String(); !strings.Contains(out, "upstream answered") ||
		strings.Contains(out, s.Token()) || strings.Contains(out, realKey) {
		t.Errorf("debug log names a secret, or logs nothing:\n%s", out)
	}
}

// TestGzipUpstreamMetered: the upstream may compress (the transport asked
// for gzip); the client gets plain bytes and the usage is still read.
func TestGzipUpstreamMetered(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept-Encoding") != "gzip" {
			t.Errorf("upstream Accept-Encoding = %q", r.Header.Get("Accept-Encoding"))
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		io.WriteString(zw, sseBody("claude-haiku-4-5", 70, 8))
		zw.Close()
	})
	p := newProxy(t, Options{Provider: ovrlrd.Anthropic, Upstream: up.URL, Credential: realKey})
	s := open(t, p)
	r := send(t, "POST", s.BaseURL()+"/v1/messages", msgBody, map[string]string{"Accept-Encoding": "gzip, deflate, br, zstd"})
	if r.header.Get("Content-Encoding") != "" || !strings.HasPrefix(r.body, "event: message_start") {
		t.Fatalf("client got Content-Encoding %q body %.40q", r.header.Get("Content-Encoding"), r.body)
	}
	if u := s.Usage(); u.InputTokens != 70 || u.OutputTokens != 8 {
		t.Errorf("usage = %+v", u)
	}
}

// TestOAuthBearerSwap: in OAuth mode the client's bearer token is replaced
// by the operator's, and the CLI's beta flags still reach the upstream.
func TestOAuthBearerSwap(t *testing.T) {
	up := newUpstream(t, nil)
	p := newProxy(t, Options{Provider: ovrlrd.OAuth, Upstream: up.URL, Credential: realOAuth})
	s := open(t, p)
	r := send(t, "POST", s.BaseURL()+"/v1/messages?beta=true", msgBody, map[string]string{
		"Authorization":  "Bearer " + s.Token(),
		"Anthropic-Beta": "claude-code-20250219,oauth-2025-04-20",
	})
	if r.status != 200 {
		t.Fatalf("status %d body %s", r.status, r.body)
	}
	reqs := up.seen()
	h := reqs[0].Header
	if h.Get("Authorization") != "Bearer "+realOAuth || h.Get("X-Api-Key") != "" {
		t.Errorf("upstream Authorization %q x-api-key %q", h.Get("Authorization"), h.Get("X-Api-Key"))
	}
	if h.Get("Anthropic-Beta") != "claude-code-20250219,oauth-2025-04-20" {
		t.Errorf("anthropic-beta = %q", h.Get("Anthropic-Beta"))
	}
	assertNoToken(t, reqs, s.Token())
}

func assertNoToken(t *testing.T, reqs []seen, token string) {
	t.Helper()
	for _, r := range reqs {
		if strings.Contains(r.Path+r.RawPath+r.Query+string(r.Body), token) {
			t.Errorf("upstream request %s carries the session token", r.Path)
		}
		for k, vs := range r.Header {
			for _, v := range vs {
				if strings.Contains(v, token) {
					t.Errorf("upstream header %s carries the session token", k)
				}
			}
		}
	}
}

// TestUsageSummedOverTwoRequests: a streamed and a non-streamed response
// add up, with each priced by its own model.
func TestUsageSummedOverTwoRequests(t *testing.T) {
	var n atomic.Int32
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			sseAnswer("claude-sonnet-4-5-20250929", 1000, 200)(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"msg_2","type":"message","model":"claude-haiku-4-5-20251001","content":[],`+
			`"usage":{"input_tokens":10,"cache_creation_input_tokens":2000,"cache_read_input_tokens":30000,"output_tokens":40}}`)
	})
	p := newProxy(t, Options{Provider: ovrlrd.Anthropic, Upstream: up.URL, Credential: realKey})
	s := open(t, p)
	if u := s.Usage(); u.InputTokens != 0 || u.CostUSD != 0 {
		t.Fatalf("fresh session usage = %+v", u)
	}
	send(t, "POST", s.BaseURL()+"/v1/messages", msgBody, nil)
	send(t, "POST", s.BaseURL()+"/v1/messages", `{"model":"claude-haiku-4-5"}`, nil)
	u := s.Usage()
	if u.InputTokens != 1000+10+2000+30000 || u.OutputTokens != 200+40 {
		t.Errorf("tokens = %d in, %d out", u.InputTokens, u.OutputTokens)
	}
	want := (1000*3.0+200*15.0)/1e6 + (10*1.0+2000*1.25+30000*0.1+40*5.0)/1e6
	if !near(u.CostUSD, want) {
		t.Errorf("cost = %.9f, want %.9f", u.CostUSD, want)
	}
}

// TestSessionCloseCancelsInFlight: closing a session cuts its streaming
// request upstream, and the part already streamed still counts.
func TestSessionCloseCancelsInFlight(t *testing.T) {
	started, cancelled := make(chan struct{}), make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, strings.SplitAfter(sseBody("claude-opus-4-8", 500, 9), "\n\n")[0])
		w.(http.Flusher).Flush()
		close(started)
		<-r.Context().Done()
		close(cancelled)
	})
	p := newProxy(t, Options{Provider: ovrlrd.Anthropic, Upstream: up.URL, Credential: realKey})
	s := open(t, p)
	req, _ := http.NewRequest("POST", s.BaseURL()+"/v1/messages", strings.NewReader(msgBody))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	<-started
	first := make([]byte, 20)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatalf("first bytes: %v", err)
	}
	s.Close()
	<-cancelled
	io.ReadAll(resp.Body) // ends, cleanly or not, now that upstream is gone
	if u := s.Usage(); u.InputTokens != 500 || u.CostUSD <= 0 {
		t.Errorf("usage of the cut stream = %+v", u)
	}
}

// TestProxyClose: Close ends in-flight requests and sessions, leaves no
// goroutine of this package running, and refuses new sessions.
func TestProxyClose(t *testing.T) {
	started := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		close(started)
		<-r.Context().Done()
	})
	p := newProxy(t, Options{Provider: ovrlrd.Anthropic, Upstream: up.URL, Credential: realKey})
	s := open(t, p)
	done := make(chan error, 1)
	go func() {
		resp, err := http.Post(s.BaseURL()+"/v1/messages", "application/json", strings.NewReader(msgBody))
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		done <- err
	}()
	<-started
	if ownGoroutines() == "" {
		t.Fatal("no handler goroutine seen while a request is in flight: the leak check would prove nothing")
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	<-done
	if leaks := ownGoroutines(); leaks != "" {
		t.Errorf("goroutines left after Close:\n%s", leaks)
	}
	if _, err := p.Open(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Open after Close: %v", err)
	}
	if _, err := http.Head(s.BaseURL()); err == nil {
		t.Errorf("still listening after Close")
	}
}

// TestNewValidates: New refuses incomplete or unsafe options.
func TestNewValidates(t *testing.T) {
	for _, o := range []Options{
		{},
		{Provider: "openai", Credential: "x"},
		{Provider: ovrlrd.OAuth, Upstream: "http://api.example.com", Credential: "x"},
		{Provider: ovrlrd.Anthropic, Upstream: "ftp://127.0.0.1", Credential: "x"},
		{Provider: ovrlrd.Anthropic, Upstream: "https://u:p@api.example.com", Credential: "x"},
		{Provider: ovrlrd.Bedrock, Region: "us-east-1"},
		{Provider: ovrlrd.Bedrock, Region: "../evil", AWSCredentials: testCreds()},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

// A session tells when its CLI first asked the model, which lets a turn's
// title run wait until then; a refused path is no request to the model.
func TestAskedClosesAtTheFirstRequest(t *testing.T) {
	up := newUpstream(t, nil)
	p := newProxy(t, Options{Provider: ovrlrd.Anthropic, Upstream: up.URL, Credential: realKey})
	s := open(t, p)
	asked := func() bool {
		select {
		case <-s.Asked():
			return true
		default:
			return false
		}
	}
	send(t, "POST", s.BaseURL()+"/v1/nope", msgBody, nil)
	if asked() {
		t.Fatal("Asked closed before any model request")
	}
	if r := send(t, "POST", s.BaseURL()+"/v1/messages", msgBody, nil); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	if !asked() {
		t.Fatal("Asked still open after a model request")
	}
}
