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
		if status, body, bad := checkTarget(e.RawPath, e.RequestContext.HTTP.Path, e.RawQueryString); bad {
			return events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: jsonHeader(), Body: body}, nil
		}
		return next(ctx, e)
	}
}

// CheckStream is CheckHTTP for the Function URL adapter, which fails the
// same way (its error quotes the URL).
func CheckStream(next FunctionURLHandler) FunctionURLHandler {
	return func(ctx context.Context, e *events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error) {
		if e != nil {
			if status, body, bad := checkTarget(e.RawPath, e.RequestContext.HTTP.Path, e.RawQueryString); bad {
				return &events.LambdaFunctionURLStreamingResponse{StatusCode: status, Headers: jsonHeader(), Body: strings.NewReader(body)}, nil
			}
		}
		return next(ctx, e)
	}
}

// checkTarget refuses a request whose paths hold an ASCII control character,
// before or after percent-decoding, or a malformed escape, or whose query
// holds a control character. Both paths of the event are checked, the raw
// one (decoded by the HTTP API, still encoded from a Function URL) and the
// request context's, which the adapter falls back to and prints. No route
// takes such a path, so refusing it costs the app nothing. A refused
// request is answered with status and body.
func checkTarget(rawPath, contextPath, rawQuery string) (status int, body string, bad bool) {
	bad = hasControl(rawQuery)
	for _, p := range []string{rawPath, contextPath} {
		decoded, err := url.PathUnescape(p)
		bad = bad || hasControl(p) || err != nil || hasControl(decoded)
	}
	if !bad {
		return 0, "", false
	}
	status, body = errorJSON(ovrlrd.Errorf(ovrlrd.EINVALID, "The request URL is malformed."))
	return status, body, true
}

func jsonHeader() map[string]string { return map[string]string{"Content-Type": "application/json"} }

func hasControl(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0
}
