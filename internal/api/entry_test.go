package api_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdaurl"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/ovrlrd/cloud/internal/api"
	"github.com/ovrlrd/cloud/internal/devkit/gateway"
	"github.com/ovrlrd/cloud/internal/devkit/storetest"
)

// forged is a whole log line an attacker would like to add.
const forged = `{"level":"ERROR","msg":"forged by the client"}`

// craftedSegments are path segments no route takes: every ASCII control
// character as the HTTP API delivers it (decoded) and as a Function URL
// does (encoded), and malformed escapes.
func craftedSegments() []string {
	var out []string
	for c := 0; c < 0x20; c++ {
		out = append(out, "x"+string(rune(c))+forged, fmt.Sprintf("x%%%02x%s", c, forged), fmt.Sprintf("x%%%02X", c))
	}
	return append(out, "x\x7f", "x%7f", "x%7F", "x%", "x%zz", "x%0", "x%g1", "%%0a", "x%0a%zz")
}

// craftedPaths puts each crafted segment into every route of the stack: in
// place of each parameter, and after each fixed path.
func craftedPaths() []string {
	var templates []string
	for _, r := range gateway.HTTPAPIRoutes {
		if _, tmpl, ok := strings.Cut(r.Key, " "); ok {
			templates = append(templates, tmpl)
		}
	}
	templates = append(templates, "/chat/{id}/stream", "/nope")
	var out []string
	for _, seg := range craftedSegments() {
		for _, tmpl := range templates {
			p := tmpl
			for _, param := range []string{"{id}", "{token}"} {
				p = strings.ReplaceAll(p, param, seg)
			}
			if p == tmpl {
				p += seg
			}
			out = append(out, p)
		}
	}
	return out
}

// printed runs fn and returns what it wrote to stdout and through the
// standard logger: where the Lambda adapters print.
func printed(t *testing.T, fn func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	var std bytes.Buffer
	log.SetOutput(&std)
	out := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(r)
		out <- string(b)
	}()
	var once sync.Once
	restore := func() {
		once.Do(func() {
			os.Stdout = stdout
			log.SetOutput(os.Stderr)
			w.Close()
		})
	}
	defer restore() // also when fn stops the test
	fn()
	restore()
	return <-out + std.String()
}

// Every function's entry answers a crafted path 400 with the API's error
// body before its adapter sees it, so nothing of it is printed or logged.
func TestEntryRefusesCraftedPaths(t *testing.T) {
	var logs bytes.Buffer
	deps := api.Deps{Log: slog.New(slog.NewJSONHandler(&logs, nil)), APIKey: key, Store: storetest.New(t)}
	authFn := api.CheckHTTP(httpadapter.NewV2(api.NewAuth(deps)).ProxyWithContext)
	chatFn := api.CheckHTTP(httpadapter.NewV2(api.NewChat(deps)).ProxyWithContext)
	streamFn := api.CheckStream(lambdaurl.Wrap(api.NewStream(deps)))
	ctx := context.Background()
	const want = `{"error":"The request URL is malformed."}`

	paths := craftedPaths()
	out := printed(t, func() {
		for _, p := range paths {
			e := httpEvent("POST", p)
			for name, fn := range map[string]api.HTTPAPIHandler{"auth": authFn, "chat": chatFn} {
				resp, err := fn(ctx, e)
				if err != nil || resp.StatusCode != 400 || resp.Body != want || resp.Headers["Content-Type"] != "application/json" {
					t.Errorf("%s %q: %d %q %v", name, p, resp.StatusCode, resp.Body, err)
				}
			}
			resp, err := streamFn(ctx, urlEvent(e))
			if err != nil || resp.StatusCode != 400 || resp.Headers["Content-Type"] != "application/json" {
				t.Errorf("stream %q: %+v %v", p, resp, err)
				continue
			}
			if b, _ := io.ReadAll(resp.Body); string(b) != want {
				t.Errorf("stream %q: %q", p, b)
			}
		}
	})
	if strings.Contains(out, "forged") || strings.Contains(logs.String(), "forged") {
		t.Fatalf("a crafted path reached the output:\n%s\n%s", out, logs.String())
	}
	if len(paths) < 500 {
		t.Fatalf("only %d crafted paths", len(paths))
	}

	// A well-formed request still reaches the API.
	resp, err := chatFn(ctx, httpEvent("GET", "/health"))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /health: %d %v", resp.StatusCode, err)
	}
	// And without the check, the adapter prints the forged line itself.
	bare := httpadapter.NewV2(api.NewChat(deps)).ProxyWithContext
	out = printed(t, func() { _, _ = bare(ctx, httpEvent("GET", "/chat/x\n"+forged)) })
	if !strings.Contains(out, "\n"+forged) {
		t.Fatalf("the unchecked adapter printed %q; the capture proves nothing", out)
	}
}

func httpEvent(method, path string) events.APIGatewayV2HTTPRequest {
	return events.APIGatewayV2HTTPRequest{
		Version: "2.0", RawPath: path, Headers: map[string]string{"x-api-key": key},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			DomainName: "api.example.com",
			HTTP:       events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path, SourceIP: "192.0.2.1"},
		},
	}
}

func urlEvent(e events.APIGatewayV2HTTPRequest) *events.LambdaFunctionURLRequest {
	return &events.LambdaFunctionURLRequest{
		Version: "2.0", RawPath: e.RawPath, Headers: e.Headers,
		RequestContext: events.LambdaFunctionURLRequestContext{
			DomainName: e.RequestContext.DomainName,
			HTTP:       events.LambdaFunctionURLRequestContextHTTPDescription(e.RequestContext.HTTP),
		},
	}
}

// Only the query's raw control characters are refused: the adapters parse
// any other query, and the API reads its values decoded.
func TestEntryChecksTheQuery(t *testing.T) {
	chatFn := api.CheckHTTP(httpadapter.NewV2(chat(t, storetest.New(t))).ProxyWithContext)
	for q, status := range map[string]int{"limit=1": 200, "a=%0a": 200, "a=%zz": 200, "a=\n": 400, "a=\x00": 400} {
		e := httpEvent("GET", "/health")
		e.RawQueryString = q
		resp, err := chatFn(context.Background(), e)
		if err != nil || resp.StatusCode != status {
			t.Errorf("query %q: %d %v, want %d", q, resp.StatusCode, err, status)
		}
	}
}
