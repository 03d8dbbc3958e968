package api

import (
	"context"
	"net/url"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// HTTPAPIHandler is the Lambda handler of an HTTP API (payload 2.0) function.
type HTTPAPIHandler = func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// FunctionURLHandler is the Lambda handler of a streamed Function URL.
type FunctionURLHandler = func(context.Context, *events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error)

// CheckHTTP runs before the HTTP API adapter of a function. The adapter
// cannot turn a path with a control character or a broken escape into a
// request: it prints the raw path to stdout, where a newline in it forges a
// log line, and fails the invocation, which the HTTP API answers with a 500.
// Such a request is answered 400 here instead, and nothing of it is printed.
func CheckHTTP(next HTTPAPIHandler) HTTPAPIHandler {
	return func(ctx context.Context, e events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		if malformed(e.RawPath, e.RequestContext.HTTP.Path, e.RawQueryString) {
			return events.APIGatewayV2HTTPResponse{StatusCode: malformedStatus, Headers: jsonHeader(), Body: malformedBody}, nil
		}
		return next(ctx, e)
	}
}

// CheckStream is CheckHTTP for the Function URL adapter, which fails the
// same way (its error quotes the URL).
func CheckStream(next FunctionURLHandler) FunctionURLHandler {
	return func(ctx context.Context, e *events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error) {
		if e != nil && malformed(e.RawPath, e.RequestContext.HTTP.Path, e.RawQueryString) {
			return &events.LambdaFunctionURLStreamingResponse{StatusCode: malformedStatus, Headers: jsonHeader(), Body: strings.NewReader(malformedBody)}, nil
		}
		return next(ctx, e)
	}
}

// malformed reports whether a request's paths hold an ASCII control
// character, before or after percent-decoding, or a malformed escape, or
// whether its query holds a control character. Both paths of the event are
// checked, the raw one (decoded by the HTTP API, still encoded from a
// Function URL) and the request context's, which the adapter falls back to
// and prints. No route takes such a path, so refusing it costs the app
// nothing.
func malformed(rawPath, contextPath, rawQuery string) bool {
	bad := hasControl(rawQuery)
	for _, p := range []string{rawPath, contextPath} {
		decoded, err := url.PathUnescape(p)
		bad = bad || hasControl(p) || err != nil || hasControl(decoded)
	}
	return bad
}

// malformedStatus and malformedBody answer a malformed request.
var malformedStatus, malformedBody = errorJSON(ovrlrd.Errorf(ovrlrd.EINVALID, "The request URL is malformed."))

func jsonHeader() map[string]string { return map[string]string{"Content-Type": "application/json"} }

func hasControl(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0
}
