package modelproxy

import (
	"context"
	"fmt"
	"github.com/ovrlrd/cloud/internal/devkit/devenv"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

const (
	realKey   = "sk-ant-real-operator-key-0123456789"
	realOAuth = "sk-ant-oat01-real-operator-oauth-token"
)

// seen is one request as the upstream stand-in received it.
type seen struct {
	Method, Path, RawPath, Query string
	Header                       http.Header
	Body                         []byte
}

// upstream is a recording stand-in for the model API; answer writes each
// response (a default SSE turn when nil).
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

func newUpstream(t *testing.T, answer http.HandlerFunc) *upstream {
	t.Helper()
	if answer == nil {
		answer = sseAnswer("claude-sonnet-4-5", 100, 50)
	}
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, seen{r.Method, r.URL.Path, r.URL.RawPath, r.URL.RawQuery, r.Header.Clone(), body})
		u.mu.Unlock()
		answer(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) seen() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seen(nil), u.reqs...)
}

// sseAnswer streams a short message reporting in input and out output
// tokens, the way the Messages API does.
func sseAnswer(model string, in, out int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		fmt.Fprint(w, sseBody(model, in, out))
	}
}

func sseBody(model string, in, out int) string {
	return "event: message_start\n" +
		`data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"` + model +
		`","content":[],"usage":{"input_tokens":` + fmt.Sprint(in) + `,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}` + "\n\n" +
		"event: ping\ndata: {\"type\": \"ping\"}\n\n" +
		"event: content_block_start\n" + `data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}` + "\n\n" +
		"event: content_block_delta\n" + `data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi \"model\" usage"}}` + "\n\n" +
		"event: content_block_stop\n" + `data: {"type":"content_block_stop","index":0}` + "\n\n" +
		"event: message_delta\n" + `data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":` + fmt.Sprint(out) + `}}` + "\n\n" +
		"event: message_stop\n" + `data: {"type":"message_stop"}` + "\n\n"
}

// newProxy builds a proxy and closes it when the test ends.
func newProxy(t *testing.T, o Options) *Proxy {
	t.Helper()
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func open(t *testing.T, p *Proxy) *Session {
	t.Helper()
	s, err := p.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s.(*Session)
}

// response is a finished client request.
type response struct {
	status int
	header http.Header
	body   string
}

// send makes one request through the loopback listener.
func send(t *testing.T, method, url, body string, header map[string]string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, url, err)
	}
	return response{resp.StatusCode, resp.Header, string(b)}
}

// logger writes to l at every level, for tests that read what was logged.
func logger(l *devenv.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// near reports whether two dollar amounts agree to a millionth of a cent.
func near(a, b float64) bool {
	d := a - b
	return d < 1e-8 && d > -1e-8
}
