package gateway_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdaurl"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/ovrlrd/cloud/internal/api"
	"github.com/ovrlrd/cloud/internal/devkit/gateway"
)

// echo answers with the function's name, the client address as the one
// ClientIP rule sees it, and the body it received.
func echo(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s %s %q", name, r.Method, r.URL.RequestURI(), api.ClientIP(r), b)
	})
}

func start(t *testing.T, stream http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(gateway.New(gateway.Targets{
		Auth:   httpadapter.NewV2(echo("auth")).ProxyWithContext,
		Chat:   httpadapter.NewV2(echo("chat")).ProxyWithContext,
		Stream: lambdaurl.Wrap(stream),
		Log:    slog.New(slog.DiscardHandler),
	}))
	t.Cleanup(srv.Close)
	return srv
}

func call(t *testing.T, srv *httptest.Server, method, path, body string, header map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRouting(t *testing.T) {
	srv := start(t, echo("stream"))
	cases := []struct{ method, path, want string }{
		{"POST", "/auth", "auth POST /auth"},
		{"POST", "/auth/refresh", "auth POST /auth/refresh"},
		{"DELETE", "/auth/account", "chat DELETE /auth/account"},
		{"GET", "/auth", "chat GET /auth"}, // no such route: $default
		{"GET", "/health", "chat GET /health"},
		{"GET", "/chat?limit=1", "chat GET /chat?limit=1"},
		{"POST", "/chat", "chat POST /chat"},
		{"POST", "/chat/stream", "stream POST /chat/stream"},
		{"POST", "/chat/0b7e/stream", "stream POST /chat/0b7e/stream"},
		{"POST", "/chat/a/b/stream", "stream POST /chat/a/b/stream"}, // CloudFront's * spans '/'
		{"GET", "/chat/0b7e", "chat GET /chat/0b7e"},
		{"POST", "/chat/0b7e/streams", "chat POST /chat/0b7e/streams"},
	}
	for _, c := range cases {
		status, body := call(t, srv, c.method, c.path, "", nil)
		if status != 200 || !strings.HasPrefix(body, c.want+" ") {
			t.Errorf("%s %s: %d %q, want prefix %q", c.method, c.path, status, body, c.want)
		}
	}
}

// A forged X-Forwarded-For must not move the address the functions see.
func TestClientIPIgnoresForwardedHeaders(t *testing.T) {
	srv := start(t, echo("stream"))
	forged := map[string]string{"X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9", "CF-Connecting-IP": "203.0.113.9"}
	for _, path := range []string{"/health", "/auth", "/chat/stream"} {
		_, body := call(t, srv, "POST", path, "", forged)
		if !strings.Contains(body, " 127.0.0.1 ") || strings.Contains(body, "203.0.113.9") {
			t.Errorf("%s: %q", path, body)
		}
	}
}

func TestBodies(t *testing.T) {
	srv := start(t, echo("stream"))
	binary := "\xff\x00\xfe"
	for _, path := range []string{"/auth", "/chat/stream"} {
		for _, body := range []string{`{"message":"✓ héllo"}`, binary} {
			_, got := call(t, srv, "POST", path, body, nil)
			if !strings.HasSuffix(got, fmt.Sprintf("%q", body)) {
				t.Errorf("%s: body %q arrived as %q", path, body, got)
			}
		}
	}
}

func TestFunctionErrorIsAPIGateways500(t *testing.T) {
	srv := httptest.NewServer(gateway.New(gateway.Targets{
		Chat: func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			return events.APIGatewayV2HTTPResponse{}, errors.New("crashed")
		},
		Log: slog.New(slog.DiscardHandler),
	}))
	defer srv.Close()
	status, body := call(t, srv, "GET", "/health", "", nil)
	if status != 500 || body != `{"message":"Internal Server Error"}` {
		t.Fatalf("got %d %q", status, body)
	}
}

// Each write of the stream function reaches the client before the next one
// is made: the relay neither buffers nor waits for the end.
func TestStreamIsIncremental(t *testing.T) {
	release := make(chan struct{})
	srv := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {\"type\":\"ping\"}\n\n")
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		io.WriteString(w, "data: {\"type\":\"complete\"}\n\n")
	}))
	resp, err := http.Post(srv.URL+"/chat/stream", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	rd := bufio.NewReader(resp.Body)
	first, err := rd.ReadString('\n')
	if err != nil || first != "data: {\"type\":\"ping\"}\n" {
		t.Fatalf("first line %q, %v", first, err)
	}
	close(release)
	rest, _ := io.ReadAll(rd)
	if string(rest) != "\ndata: {\"type\":\"complete\"}\n\n" {
		t.Fatalf("rest %q", rest)
	}
}

// Only '*' and '?' are wildcards, '*' spans '/' and newlines, and case counts.
func TestGlob(t *testing.T) {
	for _, c := range []struct {
		pattern, s string
		want       bool
	}{
		{"/chat/*/stream", "/chat/a/b/stream", true},
		{"/chat/*/stream", "/chat/stream", false},
		{"a*", "a", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"a.c", "abc", false},
		{"(a)+[b]", "(a)+[b]", true},
		{"k/*", "k/x\ny", true},
		{"Abc", "abc", false},
	} {
		if got := gateway.Glob(c.pattern, c.s); got != c.want {
			t.Errorf("Glob(%q, %q) = %v", c.pattern, c.s, got)
		}
	}
}

// A function gets headers as payload 2.0 delivers them: names lower-cased,
// repeats joined with commas, cookies apart; query parameters joined too.
func TestEventHeadersCookiesAndQuery(t *testing.T) {
	got := make(chan events.APIGatewayV2HTTPRequest, 1)
	srv := httptest.NewServer(gateway.New(gateway.Targets{
		Chat: func(_ context.Context, e events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			got <- e
			return events.APIGatewayV2HTTPResponse{StatusCode: 200}, nil
		},
		Log: slog.New(slog.DiscardHandler),
	}))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/chat?a=1&a=2&b=3", nil)
	req.Header.Add("X-Thing", "x")
	req.Header.Add("X-Thing", "y")
	req.Header.Add("Cookie", "c1=1; c2=2")
	req.Header.Add("Cookie", "c3=3")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	e := <-got
	if e.Headers["x-thing"] != "x,y" || e.Headers["host"] != srv.Listener.Addr().String() || e.Headers["cookie"] != "" || e.Headers["X-Thing"] != "" {
		t.Errorf("headers %v", e.Headers)
	}
	if strings.Join(e.Cookies, " ") != "c1=1 c2=2 c3=3" {
		t.Errorf("cookies %q", e.Cookies)
	}
	if len(e.QueryStringParameters) != 2 || e.QueryStringParameters["a"] != "1,2" || e.QueryStringParameters["b"] != "3" || e.RawQueryString != "a=1&a=2&b=3" {
		t.Errorf("query %v %q", e.QueryStringParameters, e.RawQueryString)
	}
}

// Lambda takes at most 6 MiB per invocation, the body escaped into the
// event: a body under that whose event is over it never reaches a function.
func TestEventsAboveLambdasPayloadAreRefused(t *testing.T) {
	var reached []int
	reply := func(_ context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		reached = append(reached, len(ev.Body))
		return events.APIGatewayV2HTTPResponse{StatusCode: 200}, nil
	}
	srv := httptest.NewServer(gateway.New(gateway.Targets{Chat: reply, StreamHTTP: reply, Log: slog.New(slog.DiscardHandler)}))
	defer srv.Close()
	for _, c := range []struct {
		name, body string
		want       int
	}{
		{"5 MB of text", strings.Repeat("x", 5_000_000), 200},
		{"4 MiB of quotes", strings.Repeat(`"`, 4<<20), 413},
		{"2 MiB of control bytes", strings.Repeat("\x01", 2<<20), 413},
		{"a body above 6 MiB", strings.Repeat("x", 6<<20+1), 413},
	} {
		if status, _ := call(t, srv, "POST", "/chat/import", c.body, nil); status != c.want {
			t.Errorf("%s: %d, want %d", c.name, status, c.want)
		}
	}
	if len(reached) != 1 {
		t.Fatalf("%d invocations, want the one that fits", len(reached))
	}
}
