package modelproxy

import (
	"context"
	"crypto/sha256"
	"io"
	"sync"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// Session is one turn's access to the proxy.
type Session struct {
	p      *Proxy
	id     string // for logs; the token never is logged
	token  string
	base   string
	ctx    context.Context // ends with the session; every upstream request carries it
	cancel context.CancelFunc
	slots  chan struct{} // holds one value per upstream request in flight (acquire)
	asked  chan struct{} // closed by ask
	once   sync.Once

	mu    sync.Mutex
	calls []*counts // one per metered upstream response
}

// tokenKey is the map key for a token: hashing first means a lookup's
// timing says nothing about how much of a guessed token was right.
func tokenKey(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// BaseURL is "http://127.0.0.1:PORT/t/<token>", given to the CLI as
// ANTHROPIC_BASE_URL or ANTHROPIC_BEDROCK_BASE_URL.
func (s *Session) BaseURL() string { return s.base }

// Token is the session's token. The CLI also gets it as its
// ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN, so it runs in the right auth
// mode; the proxy ignores it there.
func (s *Session) Token() string { return s.token }

// Usage is the usage of every upstream response of the session so far,
// including responses still streaming, priced per model. A message whose
// final usage has not arrived (still streaming, or cut short) is charged at
// least its content estimate; see counts.
func (s *Session) Usage() ovrlrd.Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	var u ovrlrd.Usage
	for _, c := range s.calls {
		c := c.charged()
		u.InputTokens += c.input + c.cacheWrite + c.cacheRead
		u.OutputTokens += c.output
		u.CostUSD += s.p.cost(c)
	}
	return u
}

// Asked is closed once the session forwarded its first model request
// upstream (not Bedrock's control-plane call).
func (s *Session) Asked() <-chan struct{} { return s.asked }

func (s *Session) ask() { s.once.Do(func() { close(s.asked) }) }

// Close refuses the token from now on (401: lookup checks the session's
// context before the map forgets it) and cancels the session's in-flight
// upstream requests.
func (s *Session) Close() { s.cancel() }

// track registers a new response's counts, starting from the model the
// request named, and returns the tap that fills them from body.
func (s *Session) track(model string, body io.ReadCloser, parse parser, whole bool) *tap {
	c := &counts{model: model}
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.mu.Unlock()
	return &tap{body: body, parse: parse, s: s, c: c, whole: whole}
}
