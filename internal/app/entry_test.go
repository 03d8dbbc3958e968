package app_test

import (
	"context"
	"encoding/json"
	"io"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// Every function's Lambda handler, as main.go starts it, and the local
// gateway in front of them refuse a crafted path with 400 and the API's
// error body (App.Auth, Chat and Stream wrap their adapters in
// api.CheckHTTP or api.CheckStream, whose own test covers every control
// character and proves nothing reaches the output).
func TestCraftedPathsAtEveryEntryPoint(t *testing.T) {
	s := newStack(t)
	tok, _ := s.signIn(t, uniqueSub("crafted"), "")
	const want = `{"error":"The request URL is malformed."}`
	ctx := context.Background()
	authFn, chatFn, streamFn := s.app.Auth(), s.app.Chat.HTTP(), s.app.Stream.Lambda()
	for _, path := range []string{"/auth/x\n{}", "/chat/x\x00", "/chat/x\x1b/stream", "/devices/\r"} {
		// The HTTP API hands the functions the path decoded.
		ev := events.APIGatewayV2HTTPRequest{Version: "2.0", RawPath: path, Headers: map[string]string{"x-api-key": apiKey},
			RequestContext: events.APIGatewayV2HTTPRequestContext{DomainName: "api.example.com",
				HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: path, SourceIP: "192.0.2.1"}}}
		for name, fn := range map[string]func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error){"auth": authFn, "chat": chatFn} {
			if resp, err := fn(ctx, ev); err != nil || resp.StatusCode != 400 || resp.Body != want {
				t.Errorf("%s function, %q: %d %q %v", name, path, resp.StatusCode, resp.Body, err)
			}
		}
		raw, _ := json.Marshal(events.LambdaFunctionURLRequest{Version: "2.0", RawPath: path, Headers: ev.Headers,
			RequestContext: events.LambdaFunctionURLRequestContext{DomainName: "stream.example.com",
				HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{Method: "POST", Path: path, SourceIP: "192.0.2.1"}}})
		res, err := streamFn(ctx, raw)
		resp, ok := res.(*events.LambdaFunctionURLStreamingResponse)
		if err != nil || !ok || resp.StatusCode != 400 {
			t.Errorf("stream function, %q: %#v %v", path, res, err)
			continue
		}
		if b, _ := io.ReadAll(resp.Body); string(b) != want {
			t.Errorf("stream function, %q: %q", path, b)
		}
	}
	// Through the local gateway, as a client sends them.
	for _, path := range []string{"/chat/x%0a", "/chat/x%00/stream", "/devices/x%25zz", "/auth%7f"} {
		if r := s.call(t, "POST", path, `{}`, tok); r.status != 400 || r.body != want {
			t.Errorf("POST %s: %d %s", path, r.status, r.body)
		}
	}
}
