package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/google/uuid"

	"github.com/ovrlrd/cloud/internal/api"
)

// Targets are the functions behind the gateway, each with its timeout.
type Targets struct {
	Auth, Chat api.HTTPAPIHandler
	Stream     api.FunctionURLHandler
	// StreamHTTP is the stream function's handler of the HTTP API routes it
	// serves.
	StreamHTTP api.HTTPAPIHandler
	// Web, if set, serves WebPaths, as CloudFront's origin for the web
	// client's files does; unset, those paths go to the HTTP API.
	Web http.Handler
	Log *slog.Logger
}

// Timeouts as template.yaml sets them; the HTTP API itself gives up at 30 s.
const (
	httpFunctionTimeout   = 29 * time.Second
	streamFunctionTimeout = 900 * time.Second
)

// maxPayload is Lambda's cap on a synchronous invocation's payload (6 MiB):
// the whole event, in which the body is a JSON string, escaped.
const maxPayload = 6 << 20

// tooLarge reports whether ev, carrying body, is above maxPayload as
// Lambda receives it. A body of an eighth of it cannot be: escaping
// multiplies a byte by 6 at most.
func tooLarge(body []byte, ev any) bool {
	if len(body) <= maxPayload/8 {
		return false
	}
	b, err := json.Marshal(ev)
	return err != nil || len(b) > maxPayload
}

// refuseTooLarge answers as AWS does when Lambda refuses the invocation:
// the function never sees it.
func refuseTooLarge(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusRequestEntityTooLarge)
	_, _ = io.WriteString(w, `{"message":"Request Entity Too Large"}`)
}

// New returns an http.Handler that routes like CloudFront and the HTTP API.
func New(t Targets) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t.Web != nil && isWebPath(r.URL.Path) {
			t.Web.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxPayload+1))
		if err != nil {
			http.Error(w, `{"message":"Bad Request"}`, http.StatusBadRequest)
			return
		}
		if len(body) > maxPayload {
			refuseTooLarge(w)
			return
		}
		if isStreamPath(r.URL.Path) {
			t.serveStream(w, r, body)
			return
		}
		t.serveHTTPAPI(w, r, body)
	})
}

func (t Targets) serveHTTPAPI(w http.ResponseWriter, r *http.Request, body []byte) {
	route := routeFor(r.Method, r.URL.Path)
	h := t.Chat
	switch route.Function {
	case Auth:
		h = t.Auth
	case Stream:
		h = t.StreamHTTP
	}
	ctx, cancel := invocationContext(r.Context(), httpFunctionTimeout)
	defer cancel()
	ev := httpAPIEvent(r, route.Key, body)
	if tooLarge(body, ev) {
		refuseTooLarge(w)
		return
	}
	resp, err := h(ctx, ev)
	out := []byte(resp.Body)
	if err == nil && resp.IsBase64Encoded {
		out, err = base64.StdEncoding.DecodeString(resp.Body)
	}
	if err != nil {
		// What API Gateway answers when the integration fails, or answers
		// with a body it cannot decode.
		t.Log.ErrorContext(ctx, "function error", "function", route.Function, "err", err)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"message":"Internal Server Error"}`)
		return
	}
	// Payload 2.0 answers carry no multi-value headers: the HTTP API
	// ignores them, so they are not copied either.
	writeHeaders(w, resp.Headers, resp.Cookies)
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(out)
}

func (t Targets) serveStream(w http.ResponseWriter, r *http.Request, body []byte) {
	ctx, cancel := invocationContext(r.Context(), streamFunctionTimeout)
	defer cancel()
	ev, err := functionURLEvent(r, body)
	if err != nil {
		http.Error(w, `{"message":"Bad Request"}`, http.StatusBadRequest)
		return
	}
	if tooLarge(body, ev) {
		refuseTooLarge(w)
		return
	}
	resp, err := t.Stream(ctx, ev)
	if err != nil {
		t.Log.ErrorContext(ctx, "function error", "function", Stream, "err", err)
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	if c, ok := resp.Body.(io.Closer); ok {
		defer c.Close()
	}
	writeHeaders(w, resp.Headers, resp.Cookies)
	w.WriteHeader(resp.StatusCode)
	relay(w, resp.Body)
}

func writeHeaders(w http.ResponseWriter, headers map[string]string, cookies []string) {
	for k, v := range headers {
		w.Header().Set(k, v)
	}
	for _, c := range cookies {
		w.Header().Add("Set-Cookie", c)
	}
}

// relay copies a streamed body, flushing every read so each event leaves as
// soon as the function writes it, as the Function URL does. When the client
// goes away the function is not told (in Lambda it runs on to its end), so
// the rest of the body is read and dropped.
func relay(w http.ResponseWriter, body io.Reader) {
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := body.Read(buf)
		if _, werr := w.Write(buf[:n]); werr != nil {
			_, _ = io.Copy(io.Discard, body)
			return
		}
		_ = rc.Flush()
		if err != nil {
			return
		}
	}
}

// invocationContext gives a request what Lambda gives an invocation: a
// deadline and a request id. It is detached from the client connection,
// because in Lambda a client that goes away does not cancel the invocation.
func invocationContext(parent context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx := context.WithoutCancel(parent)
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: uuid.NewString()})
	return context.WithTimeout(ctx, timeout)
}

func httpAPIEvent(r *http.Request, routeKey string, body []byte) events.APIGatewayV2HTTPRequest {
	now := time.Now()
	// Header names arrive lower-cased, and cookies apart from the headers.
	headers := commaJoined(r.Header, true)
	headers["host"] = r.Host
	delete(headers, "cookie")
	var cookies []string
	for _, c := range r.Header["Cookie"] {
		cookies = append(cookies, strings.Split(c, "; ")...)
	}
	// Bodies that are not text arrive base64-encoded, as Lambda sends them.
	b, encoded := string(body), !utf8.Valid(body)
	if encoded {
		b = base64.StdEncoding.EncodeToString(body)
	}
	// The source is the TCP connection's peer, what AWS would see: never a
	// forwarding header.
	sourceIP, _, _ := net.SplitHostPort(r.RemoteAddr)
	return events.APIGatewayV2HTTPRequest{
		Version:               "2.0",
		RouteKey:              routeKey,
		RawPath:               r.URL.Path,
		RawQueryString:        r.URL.RawQuery,
		Cookies:               cookies,
		Headers:               headers,
		QueryStringParameters: commaJoined(r.URL.Query(), false),
		Body:                  b,
		IsBase64Encoded:       encoded,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:   routeKey,
			AccountID:  "000000000000",
			Stage:      "$default",
			RequestID:  uuid.NewString(),
			APIID:      "local",
			DomainName: r.Host,
			Time:       now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:  now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      r.URL.Path,
				Protocol:  r.Proto,
				SourceIP:  sourceIP,
				UserAgent: r.UserAgent(),
			},
		},
	}
}

// functionURLEvent derives the Function URL event from the HTTP API one:
// both are payload format 2.0, whose shared fields carry the same JSON
// names, and Lambda hands the function JSON.
func functionURLEvent(r *http.Request, body []byte) (*events.LambdaFunctionURLRequest, error) {
	raw, err := json.Marshal(httpAPIEvent(r, "", body))
	e := &events.LambdaFunctionURLRequest{}
	if err == nil {
		err = json.Unmarshal(raw, e)
	}
	e.RequestContext.AccountID = "anonymous"
	return e, err
}

// commaJoined joins repeated values with commas, as payload 2.0 delivers
// headers and query parameters, lower-casing names if lower is set.
func commaJoined(values map[string][]string, lower bool) map[string]string {
	m := make(map[string]string, len(values))
	for k, vs := range values {
		if lower {
			k = strings.ToLower(k)
		}
		m[k] = strings.Join(vs, ",")
	}
	return m
}
