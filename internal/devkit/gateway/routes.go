// Package gateway stands in, on one machine, for what sits in front of the
// functions in AWS: CloudFront picks an origin by path, then the HTTP API
// picks a function by method and path, or the Function URL streams. It turns
// each request into the exact event Lambda would deliver and calls the same
// handler that main.go starts, so `make dev` and tests exercise the real
// adapters.
package gateway

import (
	"regexp"
	"slices"
	"strings"
)

// Function names a Lambda function of the stack.
type Function string

const (
	Auth   Function = "AuthFunction"
	Chat   Function = "ChatFunction"
	Stream Function = "StreamFunction"
)

// Route is one HTTP API route, written as in template.yaml ("POST /auth").
type Route struct {
	Key      string
	Function Function
}

// DefaultRoute catches every request no explicit route matches, so unknown
// paths get the API's JSON 404 instead of API Gateway's own body.
const DefaultRoute = "$default"

// HTTPAPIRoutes are the HTTP API's routes. template.yaml declares the same
// list; a test keeps the two in step.
var HTTPAPIRoutes = []Route{
	{"POST /auth", Auth},
	{"POST /auth/refresh", Auth},
	{"POST /auth/logout", Auth},
	{"DELETE /auth/account", Chat},
	{"GET /health", Chat},
	{"GET /chat", Chat},
	{"GET /chat/{id}", Chat},
	{"DELETE /chat/{id}", Chat},
	{"POST /chat/{id}/events", Chat},
	{"POST /chat", Chat},
	{"POST /chat/{id}", Chat},
	{"POST /chat/{id}/cancel", Chat},
	{"POST /chat/{id}/approvals/{requestId}", Chat},
	{"POST /devices", Chat},
	{"DELETE /devices/{token}", Chat},
	{"POST /projects", Stream},
	{"GET /projects", Stream},
	{"PATCH /projects/{id}", Stream},
	{"DELETE /projects/{id}", Stream},
	{"GET /chat/{id}/changes", Stream},
	{"POST /chat/{id}/push", Stream},
	{"GET /chat/directories", Stream},
	{"POST /chat/directories/{path}/label", Stream},
	{"DELETE /chat/directories/{path}", Stream},
	{"POST /chat/import", Stream},
	{"POST /chat/import/uploads", Stream},
	{DefaultRoute, Chat},
}

// StreamPaths are CloudFront's path patterns for the Function URL origin. As
// in CloudFront, '*' matches any run of characters, '/' included.
var StreamPaths = []string{"/chat/stream", "/chat/*/stream"}

// WebPaths are CloudFront's path patterns for the web client's origin (its
// files in S3). "/web" itself is one, which is redirected to "/web/".
var WebPaths = []string{"/web", "/web/*"}

// routeFor picks the HTTP API route for a request, the way API Gateway does:
// a route whose method and path match exactly (GET /chat/directories before
// GET /chat/{id}), else one whose path template matches, else $default.
func routeFor(method, path string) Route {
	var templated *Route
	for i, r := range HTTPAPIRoutes {
		m, tmpl, _ := strings.Cut(r.Key, " ")
		switch {
		case m != method || !templateMatch(tmpl, path):
		case tmpl == path:
			return r
		case templated == nil:
			templated = &HTTPAPIRoutes[i]
		}
	}
	if templated != nil {
		return *templated
	}
	return Route{DefaultRoute, Chat}
}

// templateMatch matches a path against an HTTP API path template, where a
// {name} segment stands for exactly one non-empty segment.
func templateMatch(tmpl, path string) bool {
	return slices.EqualFunc(strings.Split(tmpl, "/"), strings.Split(path, "/"), func(t, p string) bool {
		return t == p || strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}") && p != ""
	})
}

// isStreamPath reports whether CloudFront would send path to the Function URL.
func isStreamPath(path string) bool {
	return slices.ContainsFunc(StreamPaths, func(p string) bool { return Glob(p, path) })
}

// isWebPath reports whether CloudFront would send path to the web client's
// origin.
func isWebPath(path string) bool {
	return slices.ContainsFunc(WebPaths, func(p string) bool { return Glob(p, path) })
}

// Glob matches wildcards, as CloudFront's path patterns and IAM's
// resources and actions have them: '*' for any characters (including none)
// and '?' for exactly one. It is case-sensitive.
func Glob(pattern, s string) bool {
	expr := strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(pattern))
	return regexp.MustCompile("(?s)^" + expr + "$").MatchString(s)
}
