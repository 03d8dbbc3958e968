package gateway_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-lambda-go/lambdaurl"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/ovrlrd/cloud/internal/api"
	"github.com/ovrlrd/cloud/internal/devkit/gateway"
)

// Behind the local gateway, functions whose handlers are wrapped as app
// wires them answer a crafted path 400 on every route, as in AWS, and their
// HTTP handlers never see it.
func TestCraftedPathsAreRefusedOnEveryRoute(t *testing.T) {
	var reached atomic.Int32
	counted := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reached.Add(1)
			h.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewServer(gateway.New(gateway.Targets{
		Auth:   api.CheckHTTP(httpadapter.NewV2(counted(echo("auth"))).ProxyWithContext),
		Chat:   api.CheckHTTP(httpadapter.NewV2(counted(echo("chat"))).ProxyWithContext),
		Stream: api.CheckStream(lambdaurl.Wrap(counted(echo("stream")))),
		Log:    slog.New(slog.DiscardHandler),
	}))
	t.Cleanup(srv.Close)

	// As a client can send them: encoded control characters, and escapes
	// that the HTTP API hands on decoded, hence malformed or encoded again.
	var segments []string
	for c := 0; c < 0x20; c++ {
		segments = append(segments, fmt.Sprintf("x%%%02x", c), fmt.Sprintf("x%%25%02x", c))
	}
	segments = append(segments, "x%7f", "x%257F", "x%25", "x%25zz", "x%250")
	templates := []string{"/auth", "/auth/refresh", "/auth/logout", "/auth/account", "/health", "/chat",
		"/chat/{id}", "/chat/{id}/events", "/chat/{id}/cancel", "/chat/stream", "/chat/{id}/stream",
		"/devices", "/devices/{id}", "/nope"}
	n := 0
	for _, seg := range segments {
		for _, tmpl := range templates {
			path := strings.ReplaceAll(tmpl, "{id}", seg)
			if path == tmpl {
				path += seg
			}
			for _, method := range []string{"GET", "POST", "DELETE"} {
				status, body := call(t, srv, method, path, `{}`, nil)
				if status != 400 || body != `{"error":"The request URL is malformed."}` {
					t.Errorf("%s %s: %d %q", method, path, status, body)
				}
				n++
			}
		}
	}
	if reached.Load() != 0 {
		t.Fatalf("%d of %d crafted requests reached a handler", reached.Load(), n)
	}
	if status, body := call(t, srv, "POST", "/chat/0b7e/stream", "", nil); status != 200 || !strings.HasPrefix(body, "stream ") {
		t.Fatalf("a well-formed stream path: %d %q", status, body)
	}
}
