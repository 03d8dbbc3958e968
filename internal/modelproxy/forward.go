package modelproxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httputil"
	"slices"
	"strings"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// forward is the reverse proxy that sends c, a routed request (see
// serveHTTP), to its target.
func (p *Proxy) forward(c *call) http.Handler {
	var transport http.RoundTripper = p.transport
	if p.o.Provider == ovrlrd.Bedrock {
		transport = signing{p, c.body}
	}
	return &httputil.ReverseProxy{
		Rewrite:        func(pr *httputil.ProxyRequest) { p.rewrite(pr.Out, c) },
		Transport:      transport,
		FlushInterval:  -1, // every write reaches the CLI at once
		ModifyResponse: func(resp *http.Response) error { return p.modifyResponse(resp, c) },
		ErrorHandler:   func(w http.ResponseWriter, r *http.Request, err error) { p.upstreamError(w, r, err, c) },
		ErrorLog:       slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
	}
}

// dropped are request headers never forwarded: the client's credentials
// (the token), anything that would steer signing or the upstream host, and
// Accept-Encoding, so Go's transport asks for gzip itself and hands the
// usage parser plain bytes.
var dropped = []string{
	"Authorization", "X-Api-Key", "Proxy-Authorization", "Cookie",
	"Accept-Encoding", "Connection", "Upgrade", "Expect",
}

func (p *Proxy) rewrite(out *http.Request, c *call) {
	c.target.RawQuery = out.URL.RawQuery // the client's query, as ReverseProxy cleaned it
	out.URL = c.target
	out.Host = ""
	for h := range out.Header {
		if slices.Contains(dropped, h) || strings.HasPrefix(h, "X-Amz-") {
			out.Header.Del(h)
		}
	}
	out.ContentLength = int64(len(c.body))
	out.TransferEncoding = nil
	out.Body = http.NoBody
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(c.body)), nil }
	if len(c.body) > 0 {
		out.Body, _ = out.GetBody()
	}
	switch {
	case p.o.Credential == "":
	case p.o.Provider == ovrlrd.Anthropic:
		out.Header.Set("X-Api-Key", p.o.Credential)
	case p.o.Provider == ovrlrd.OAuth:
		out.Header.Set("Authorization", "Bearer "+p.o.Credential)
	}
}

// signing signs each Bedrock request with SigV4 just before it leaves, so
// that nothing changes a signed header afterwards, and so a failure to get
// credentials is an upstream error (502) rather than a bad request.
type signing struct {
	p    *Proxy
	body []byte
}

func (t signing) RoundTrip(r *http.Request) (*http.Response, error) {
	creds, err := t.p.creds.Retrieve(r.Context())
	if err != nil {
		return nil, fmt.Errorf("modelproxy: no AWS credentials to sign with: %w", err)
	}
	signed := r.Clone(r.Context())
	hash := sha256.Sum256(t.body)
	err = v4.NewSigner().SignHTTP(r.Context(), creds, signed, hex.EncodeToString(hash[:]), "bedrock", t.p.o.Region, time.Now().UTC())
	if err != nil {
		return nil, errors.New("modelproxy: SigV4 signing failed")
	}
	return t.p.transport.RoundTrip(signed)
}

func (p *Proxy) modifyResponse(resp *http.Response, c *call) error {
	resp.Header.Del("Set-Cookie")
	p.log.Debug("modelproxy: upstream answered", "session", c.s.id, "route", c.route, "status", resp.StatusCode)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	var parse parser
	whole := false
	switch ct {
	case "text/event-stream":
		parse = &sseParser{}
	case "application/vnd.amazon.eventstream":
		parse = &frameParser{}
	case "application/json":
		// A model call's body is generated content until it parses whole;
		// Bedrock's profile list (GET) is not, and costs nothing cut or not.
		parse, whole = &jsonParser{}, resp.Request.Method == http.MethodPost
	default:
		return nil
	}
	resp.Body = c.s.track(c.model, resp.Body, parse, whole)
	return nil
}

func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error, c *call) {
	if errors.Is(err, context.Canceled) || r.Context().Err() != nil {
		// The CLI went away or the session ended: nobody to answer.
		p.log.Debug("modelproxy: request cancelled", "session", c.s.id, "route", c.route)
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	p.log.Warn("modelproxy: upstream request failed", "session", c.s.id, "route", c.route, "err", err)
	refuse(w, http.StatusBadGateway, "api_error", "upstream request failed")
}
