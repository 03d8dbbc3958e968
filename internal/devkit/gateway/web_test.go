package gateway_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdaurl"

	"github.com/ovrlrd/cloud/internal/devkit/gateway"
)

// startWeb is a gateway whose chat function names the route it was
// invoked for, with web as its Targets.Web.
func startWeb(t *testing.T, web http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(gateway.New(gateway.Targets{
		Chat: func(_ context.Context, e events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			return events.APIGatewayV2HTTPResponse{StatusCode: 404, Body: fmt.Sprintf("chat %s %s %s", e.RouteKey, e.RequestContext.HTTP.Method, e.RawPath)}, nil
		},
		Stream: lambdaurl.Wrap(echo("stream")),
		Web:    web,
		Log:    slog.New(slog.DiscardHandler),
	}))
	t.Cleanup(srv.Close)
	return srv
}

// webEcho answers as the web handler, with the body it received whole.
var webEcho = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	fmt.Fprintf(w, "web %s %s %q", r.Method, r.URL.RequestURI(), b)
})

// The web client's paths, "/web" itself too, go to Targets.Web, body
// untouched; everything else to the API and the Function URL as before.
func TestWebPaths(t *testing.T) {
	srv := startWeb(t, webEcho)
	cases := []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"GET", "/web/", "", 200, `web GET /web/ ""`},
		{"GET", "/web/x", "", 200, `web GET /web/x ""`},
		{"HEAD", "/web/app.js", "", 200, ``},
		{"GET", "/web/a/b.js?v=1", "", 200, `web GET /web/a/b.js?v=1 ""`},
		{"POST", "/web/dev/identity-token", `{"name":"A"}`, 200, `web POST /web/dev/identity-token "{\"name\":\"A\"}"`},
		{"GET", "/web", "", 200, `web GET /web ""`},
		{"GET", "/webx/y", "", 404, "chat $default GET /webx/y"},
		{"GET", "/x/web/y", "", 404, "chat $default GET /x/web/y"},
		{"GET", "/health", "", 404, "chat GET /health GET /health"},
		{"POST", "/chat/stream", "", 200, `stream POST /chat/stream 127.0.0.1 ""`},
		{"POST", "/chat/0b7e/stream", "", 200, `stream POST /chat/0b7e/stream 127.0.0.1 ""`},
	}
	for _, c := range cases {
		status, body := call(t, srv, c.method, c.path, c.body, nil)
		if status != c.status || body != c.want {
			t.Errorf("%s %s: %d %q, want %d %q", c.method, c.path, status, body, c.status, c.want)
		}
	}
	if !slices.Equal(gateway.WebPaths, []string{"/web", "/web/*"}) {
		t.Errorf("WebPaths %v", gateway.WebPaths)
	}
}

// Without a web handler the gateway routes as it did before: the web
// client's paths are the API's $default.
func TestWebPathsWithoutWeb(t *testing.T) {
	srv := startWeb(t, nil)
	for _, path := range []string{"/web/x", "/web/", "/web"} {
		status, body := call(t, srv, "GET", path, "", nil)
		if want := "chat $default GET " + path; status != 404 || body != want {
			t.Errorf("%s: %d %q, want %q", path, status, body, want)
		}
	}
}
