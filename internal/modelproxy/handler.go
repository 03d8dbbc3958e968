package modelproxy

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// MaxBody is the largest request body forwarded.
const MaxBody = 32 << 20

// call is what the handler hands the reverse proxy (forward) about one
// request.
type call struct {
	s      *Session
	target *url.URL
	body   []byte
	model  string // from the request body or the Bedrock path
	route  string // method and path after the token, for logs
	setup  bool   // a control-plane call the CLI makes while it starts, not a model request
}

func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		refuse(w, http.StatusForbidden, "permission_error", "forbidden")
		return
	}
	token, rest := splitToken(r.URL.EscapedPath())
	s := p.lookup(token)
	if s == nil {
		refuse(w, http.StatusUnauthorized, "authentication_error", "invalid or expired proxy token")
		return
	}
	if r.Header.Get("Upgrade") != "" {
		refuse(w, http.StatusNotFound, "not_found_error", "not found")
		return
	}
	c := p.route(r.Method, rest)
	if c == nil {
		p.log.Debug("modelproxy: refused path", "session", s.id, "method", r.Method, "path", rest)
		refuse(w, http.StatusNotFound, "not_found_error", "not found")
		return
	}
	if c.target == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	c.s = s
	// The whole body is needed before forwarding anyway (SigV4 signs its
	// hash), and reading it first answers 413 before any upstream traffic.
	if c.body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody)); err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			refuse(w, http.StatusRequestEntityTooLarge, "request_too_large", "request body too large")
		} else {
			refuse(w, http.StatusBadRequest, "invalid_request_error", "cannot read request body")
		}
		return
	}
	if c.model == "" && len(c.body) > 0 {
		var m payload              // a request names its model where a whole message does
		json.Unmarshal(c.body, &m) // a body without a model leaves it to the response
		c.model = m.Model
	}

	// Taken after the body is read: only then does the server watch the
	// connection, so that a client hanging up ends its wait.
	if !s.acquire(r.Context(), c.route) {
		// The session ended while waiting (or the client left: nobody reads this).
		refuse(w, http.StatusUnauthorized, "authentication_error", "invalid or expired proxy token")
		return
	}
	defer s.release()
	if !c.setup {
		s.ask()
	}

	// The upstream request ends with the client's request or the session,
	// whichever ends first.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	p.forward(c).ServeHTTP(w, r.WithContext(ctx))
}

// splitToken cuts "/t/<token>/rest" into the token and "/rest" ("/" when
// there is no rest). Any other path has no token.
func splitToken(path string) (token, rest string) {
	after, found := strings.CutPrefix(path, "/t/")
	if !found {
		return "", ""
	}
	token, rest, _ = strings.Cut(after, "/")
	return token, "/" + rest
}

// modelID is what a Bedrock model id (or inference profile ARN) may hold.
var modelID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]*$`)

// route matches method and escaped path against the provider's allow-list.
// It returns nil for anything else, and a call with no target for the HEAD
// the CLI sends as a connectivity check, which needs no upstream.
func (p *Proxy) route(method, rest string) *call {
	at := func(base *url.URL, esc string) *call {
		u := *base
		path, _ := url.PathUnescape(esc)
		u.Path = strings.TrimSuffix(base.Path, "/") + path
		u.RawPath = strings.TrimSuffix(base.EscapedPath(), "/") + esc
		return &call{target: &u, route: method + " " + path}
	}
	if p.o.Provider != ovrlrd.Bedrock {
		switch {
		case method == http.MethodHead && rest == "/":
			return &call{}
		case method == http.MethodPost && (rest == "/v1/messages" || rest == "/v1/messages/count_tokens"):
			return at(p.api, rest)
		}
		return nil
	}
	if method == http.MethodGet && rest == "/inference-profiles" {
		c := at(p.control, rest)
		c.setup = true
		return c
	}
	esc, ok := strings.CutPrefix(rest, "/model/")
	if method != http.MethodPost || !ok {
		return nil
	}
	i := strings.LastIndexByte(esc, '/')
	if i < 0 || (esc[i+1:] != "invoke" && esc[i+1:] != "invoke-with-response-stream") {
		return nil
	}
	id, err := url.PathUnescape(esc[:i])
	if err != nil || !modelID.MatchString(id) || strings.Contains(id, "..") {
		return nil
	}
	// Escape the id the way the AWS SDKs do, so the signed path and the
	// path Bedrock sees agree however the client spelled it.
	c := at(p.api, "/model/"+strings.ReplaceAll(url.PathEscape(id), ":", "%3A")+"/"+esc[i+1:])
	c.model = id
	return c
}

// refuse answers with a small Anthropic-style JSON error.
func refuse(w http.ResponseWriter, status int, typ, msg string) {
	body, _ := json.Marshal(map[string]any{
		"type":  "error",
		"error": map[string]string{"type": typ, "message": msg},
	})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}
