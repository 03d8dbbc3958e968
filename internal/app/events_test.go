package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ovrlrd/cloud/internal/devkit/gateway"
	"github.com/ovrlrd/cloud/internal/devkit/samtemplate"
)

// The sample events carry these instead of secrets; the app under test is
// given the same, so the API key and origin checks pass and each event
// reaches its route.
const (
	sampleAPIKey       = "sample-api-key-not-a-secret"
	sampleOriginSecret = "sample-origin-secret-not-a-secret"
)

// Every sample event in events/ (the shape `sam local invoke` feeds)
// decodes strictly into the type Lambda hands the function, and the real
// handler answers it with the expected status. The events carry no valid
// session token, so protected routes answer 401: the route was reached and
// refused the token.
func TestSampleEvents(t *testing.T) {
	a := newStack(t, "API_KEY", sampleAPIKey, "ORIGIN_SECRET", sampleOriginSecret).app
	want := map[string]int{
		"auth-signin.json":            401, // a junk identity token
		"auth-refresh.json":           401,
		"auth-logout.json":            401,
		"chat-account-delete.json":    401,
		"chat-health.json":            200,
		"chat-list.json":              401,
		"chat-get.json":               401,
		"chat-delete.json":            401,
		"chat-event.json":             401,
		"chat-turn.json":              401,
		"chat-turn-conversation.json": 401,
		"chat-cancel.json":            401,
		"chat-approval-answer.json":   401,
		"chat-device-register.json":   401,
		"chat-device-remove.json":     401,
		"chat-default.json":           404,
		"stream-new.json":             401,
		"stream-continue.json":        401,
		"stream-reattach.json":        401,
		// HTTP API routes the stream function serves.
		"stream-project-create.json":   401,
		"stream-project-list.json":     401,
		"stream-project-update.json":   401,
		"stream-project-delete.json":   401,
		"stream-changes.json":          401,
		"stream-push.json":             401,
		"stream-directory-list.json":   401,
		"stream-directory-label.json":  401,
		"stream-directory-delete.json": 401,
		"stream-import.json":           401,
		"stream-import-upload.json":    401,
	}
	files, err := samtemplate.SampleEvents("../../events")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no sample events")
	}
	seen := map[string]bool{}
	for _, f := range files {
		seen[filepath.Base(f)] = true
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("%s is expected but missing", name)
		}
	}
	routes := map[string]bool{}  // HTTP API route keys with an event
	streams := map[string]bool{} // CloudFront stream patterns with an event
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			status, ok := want[name]
			if !ok {
				t.Fatalf("no expected status for %s", name)
			}
			fn, _, _ := strings.Cut(name, "-")
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case fn == "stream" && isHTTPAPIEvent(raw):
				// An HTTP API route of the stream function, through its
				// one Lambda handler as deployed.
				var ev events.APIGatewayV2HTTPRequest
				strictDecode(t, f, &ev)
				routes[checkHTTPEvent(t, ev, fn)] = true
				out, err := a.Stream.Lambda()(context.Background(), raw)
				if err != nil {
					t.Fatal(err)
				}
				var resp events.APIGatewayV2HTTPResponse
				switch r := out.(type) {
				case events.APIGatewayV2HTTPResponse:
					resp = r
				case *events.APIGatewayV2HTTPResponse:
					resp = *r
				default:
					t.Fatalf("answered %T, want an HTTP API response", out)
				}
				if resp.StatusCode != status {
					t.Fatalf("got %d %q, want %d", resp.StatusCode, resp.Body, status)
				}
				reachedRoute(t, resp.Body)
			case fn == "auth" || fn == "chat":
				var ev events.APIGatewayV2HTTPRequest
				strictDecode(t, f, &ev)
				route := checkHTTPEvent(t, ev, fn)
				routes[route] = true
				h := a.Chat.HTTP()
				if fn == "auth" {
					h = a.Auth()
				}
				resp, err := h(context.Background(), ev)
				if err != nil || resp.StatusCode != status {
					t.Fatalf("got %d %q %v, want %d", resp.StatusCode, resp.Body, err, status)
				}
				reachedRoute(t, resp.Body)
			case fn == "stream":
				var ev events.LambdaFunctionURLRequest
				strictDecode(t, f, &ev)
				streams[checkURLEvent(t, ev)] = true
				out, err := a.Stream.Lambda()(context.Background(), raw)
				if err != nil {
					t.Fatal(err)
				}
				resp, ok := out.(*events.LambdaFunctionURLStreamingResponse)
				if !ok {
					t.Fatalf("answered %T, want a streamed response", out)
				}
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != status {
					t.Fatalf("got %d %q, want %d", resp.StatusCode, body, status)
				}
				reachedRoute(t, string(body))
			default:
				t.Fatalf("%s: name it <function>-<route>.json, function auth, chat or stream", name)
			}
		})
	}
	for _, r := range gateway.HTTPAPIRoutes {
		if !routes[r.Key] {
			t.Errorf("no sample event for the route %q", r.Key)
		}
	}
	for _, p := range gateway.StreamPaths {
		if !streams[p] {
			t.Errorf("no sample event for the stream path %q", p)
		}
	}

	// An app with another API key refuses the events' key.
	var ev events.APIGatewayV2HTTPRequest
	strictDecode(t, "../../events/chat-list.json", &ev)
	if resp, err := newApp(t).Chat.HTTP()(context.Background(), ev); err != nil || resp.StatusCode != 401 ||
		!strings.Contains(resp.Body, "Invalid API key") {
		t.Errorf("a wrong API key: %d %s %v", resp.StatusCode, resp.Body, err)
	}
}

// checkHTTPEvent checks an HTTP API event against the route it names and
// returns the route key: the route exists and belongs to the function the
// file is named after, the path fits its template, the path parameters are
// the path's, and a body is base64 as SAM's http-api-proxy events carry it.
func checkHTTPEvent(t *testing.T, ev events.APIGatewayV2HTTPRequest, fn string) string {
	t.Helper()
	var route *gateway.Route
	for i, r := range gateway.HTTPAPIRoutes {
		if r.Key == ev.RouteKey {
			route = &gateway.HTTPAPIRoutes[i]
		}
	}
	if route == nil {
		t.Fatalf("routeKey %q is not a route of the HTTP API", ev.RouteKey)
	}
	if want := map[string]gateway.Function{"auth": gateway.Auth, "chat": gateway.Chat, "stream": gateway.Stream}[fn]; route.Function != want {
		t.Fatalf("%s is served by %s, not %s", ev.RouteKey, route.Function, want)
	}
	ctx := ev.RequestContext
	if ev.Version != "2.0" || ctx.RouteKey != ev.RouteKey || ctx.HTTP.Path != ev.RawPath || ctx.Stage != "$default" {
		t.Fatalf("inconsistent event: version %q, routeKey %q/%q, path %q/%q, stage %q",
			ev.Version, ev.RouteKey, ctx.RouteKey, ev.RawPath, ctx.HTTP.Path, ctx.Stage)
	}
	if ev.RouteKey != gateway.DefaultRoute {
		method, tmpl, _ := strings.Cut(ev.RouteKey, " ")
		if ctx.HTTP.Method != method {
			t.Fatalf("method %s on route %s", ctx.HTTP.Method, ev.RouteKey)
		}
		ts, ps := strings.Split(tmpl, "/"), strings.Split(ev.RawPath, "/")
		if len(ts) != len(ps) {
			t.Fatalf("path %s does not fit %s", ev.RawPath, tmpl)
		}
		params := map[string]string{}
		for i := range ts {
			if name, ok := strings.CutPrefix(ts[i], "{"); ok {
				params[strings.TrimSuffix(name, "}")] = ps[i]
			} else if ts[i] != ps[i] {
				t.Fatalf("path %s does not fit %s", ev.RawPath, tmpl)
			}
		}
		if len(params) > 0 || len(ev.PathParameters) > 0 {
			if !equalMaps(params, ev.PathParameters) {
				t.Fatalf("pathParameters %v, path says %v", ev.PathParameters, params)
			}
		}
	}
	checkBody(t, ev.Body, ev.IsBase64Encoded)
	return ev.RouteKey
}

// isHTTPAPIEvent tells an HTTP API event from a Function URL event, both
// payload 2.0, as the stream function's handler does: only the HTTP API's
// names a route other than $default.
func isHTTPAPIEvent(raw []byte) bool {
	var ev struct {
		RouteKey string `json:"routeKey"`
	}
	return json.Unmarshal(raw, &ev) == nil && ev.RouteKey != "" && ev.RouteKey != gateway.DefaultRoute
}

// checkURLEvent checks a Function URL event and returns the CloudFront path
// pattern that sends its path to the stream function.
func checkURLEvent(t *testing.T, ev events.LambdaFunctionURLRequest) string {
	t.Helper()
	// POST starts a turn, GET reattaches to one.
	if method := ev.RequestContext.HTTP.Method; ev.Version != "2.0" || ev.RequestContext.HTTP.Path != ev.RawPath || method != "POST" && method != "GET" {
		t.Fatalf("inconsistent event: version %q, path %q/%q, method %q", ev.Version, ev.RawPath,
			ev.RequestContext.HTTP.Path, ev.RequestContext.HTTP.Method)
	}
	checkBody(t, ev.Body, ev.IsBase64Encoded)
	// The most specific pattern that matches, as CloudFront orders them.
	for _, p := range gateway.StreamPaths {
		if !strings.Contains(p, "*") && p == ev.RawPath {
			return p
		}
	}
	for _, p := range gateway.StreamPaths {
		if prefix, suffix, ok := strings.Cut(p, "*"); ok && strings.HasPrefix(ev.RawPath, prefix) &&
			strings.HasSuffix(ev.RawPath, suffix) && len(ev.RawPath) > len(prefix)+len(suffix) {
			return p
		}
	}
	t.Fatalf("%s is not a stream path %v", ev.RawPath, gateway.StreamPaths)
	return ""
}

// reachedRoute fails when the answer came from a guard in front of the
// route (API key, CloudFront's origin secret) rather than the route.
func reachedRoute(t *testing.T, body string) {
	t.Helper()
	if strings.Contains(body, "API key") || strings.Contains(body, "Forbidden") {
		t.Fatalf("stopped before the route: %s", body)
	}
	t.Logf("answer: %s", body)
}

func checkBody(t *testing.T, body string, encoded bool) {
	t.Helper()
	if body == "" {
		if encoded {
			t.Fatal("isBase64Encoded without a body")
		}
		return
	}
	if !encoded {
		t.Fatal("a body not base64-encoded: SAM's http-api-proxy events encode bodies")
	}
	raw, err := base64.StdEncoding.DecodeString(body)
	if err != nil || !json.Valid(raw) {
		t.Fatalf("body is not base64 JSON: %v", err)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func strictDecode(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("%s: trailing data", path)
	}
}
