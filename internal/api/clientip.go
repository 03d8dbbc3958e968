package api

import (
	"net/http"

	"github.com/aws/aws-lambda-go/lambdaurl"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"
)

// ClientIP is the one way to learn who is calling: the source address that
// API Gateway or the Function URL saw on the TCP connection. Headers such as
// X-Forwarded-For are written by the client and are never consulted.
func ClientIP(r *http.Request) string {
	if rc, ok := core.GetAPIGatewayV2ContextFromContext(r.Context()); ok && rc.HTTP.SourceIP != "" {
		return rc.HTTP.SourceIP
	}
	if req, ok := lambdaurl.RequestFromContext(r.Context()); ok && req.RequestContext.HTTP.SourceIP != "" {
		return req.RequestContext.HTTP.SourceIP
	}
	return "unknown"
}
