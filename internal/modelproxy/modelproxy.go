// Package modelproxy is the loopback proxy through which the CLI reaches the
// model; it holds the credential and measures usage.
//
// The CLI runs tools the model chooses, and any of them can print the CLI's
// environment or forge the CLI's output. So the CLI never gets the
// operator's credential: each turn opens a Session whose random token and
// base URL are all the CLI sees. The proxy checks the token (carried in the
// path, /t/<token>, because that is the one place every provider mode of the
// CLI keeps), swaps in the real credential or a SigV4 signature, forwards an
// allow-list of model calls to one fixed upstream, and reads the usage from
// the upstream's answers as they stream past, so the turn's cost does not
// depend on anything the CLI reports. A stream cut before its final usage
// is charged for the content it delivered (see counts), and a session has
// at most maxInFlight upstream requests at once (see acquire).
package modelproxy

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// Options configure a Proxy.
type Options struct {
	// Provider is the kind of upstream and credential: an API key sent as
	// x-api-key, an OAuth token sent as a bearer token, or the function
	// role's AWS credentials as SigV4.
	Provider ovrlrd.Provider
	// Upstream is the base URL forwarded to. Empty means Anthropic's API, or
	// for Bedrock the regional AWS endpoints (runtime and control plane);
	// when set, both go there (tests).
	Upstream string
	// Credential is the API key (Anthropic) or OAuth token (OAuth); unused
	// for Bedrock.
	Credential string
	// Region is the AWS region (Bedrock).
	Region string
	// AWSCredentials sign Bedrock requests (the function role's).
	AWSCredentials aws.CredentialsProvider
	// Log receives warnings and per-request debug lines; default discards.
	Log *slog.Logger
}

// Proxy is the loopback proxy. It is safe for concurrent use.
type Proxy struct {
	o         Options
	api       *url.URL // Anthropic's API, or Bedrock's runtime (invoke)
	control   *url.URL // Bedrock's control plane (inference profiles)
	creds     aws.CredentialsProvider
	transport *http.Transport
	log       *slog.Logger
	warned    sync.Map // model ids already warned about as unpriced

	addr string // host:port listened on
	srv  *http.Server
	// running counts srv.Serve and every connection's goroutine, so that
	// Close waits for all of them, not just for the listener.
	running sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	sessions map[[32]byte]*Session
	nextID   int
}

// ErrClosed is returned by Open after Close.
var ErrClosed = errors.New("modelproxy: closed")

var regionRE = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)+$`)

// New validates o and listens on a loopback port.
func New(o Options) (*Proxy, error) {
	p := &Proxy{o: o, log: cmp.Or(o.Log, slog.New(slog.DiscardHandler)), transport: defaultTransport(), sessions: map[[32]byte]*Session{}}
	var err error
	switch o.Provider {
	case ovrlrd.Anthropic, ovrlrd.OAuth:
		// Without a credential (a local run with no key) requests go out
		// unauthenticated, and the upstream refuses them, as it would the
		// CLI without a key; deployed stages require one at init.
		p.api, err = parseUpstream(cmp.Or(o.Upstream, "https://api.anthropic.com"))
	case ovrlrd.Bedrock:
		if !regionRE.MatchString(o.Region) {
			return nil, fmt.Errorf("modelproxy: bedrock needs a valid AWS region, got %q", o.Region)
		}
		if o.AWSCredentials == nil {
			return nil, errors.New("modelproxy: bedrock needs AWS credentials")
		}
		p.creds = aws.NewCredentialsCache(o.AWSCredentials)
		if p.api, err = parseUpstream(cmp.Or(o.Upstream, "https://bedrock-runtime."+o.Region+".amazonaws.com")); err == nil {
			p.control, err = parseUpstream(cmp.Or(o.Upstream, "https://bedrock."+o.Region+".amazonaws.com"))
		}
	default:
		return nil, fmt.Errorf("modelproxy: unknown provider %q", o.Provider)
	}
	if err != nil {
		return nil, err
	}
	if err := p.listen(); err != nil {
		return nil, err
	}
	return p, nil
}

// parseUpstream accepts an https URL, or http only to a loopback host (a
// test stand-in): the credential never crosses a network in clear text.
func parseUpstream(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("modelproxy: upstream %q is not a plain base URL", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if ip := net.ParseIP(u.Hostname()); (ip == nil || !ip.IsLoopback()) && u.Hostname() != "localhost" {
			return nil, fmt.Errorf("modelproxy: upstream %q: http only to a loopback host", raw)
		}
	default:
		return nil, fmt.Errorf("modelproxy: upstream %q: scheme must be https", raw)
	}
	return u, nil
}

func defaultTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	// The default's TLS handshake (10 s) and idle (90 s) timeouts stand.
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	// A non-streaming Messages call may think for minutes before its
	// headers; the API itself gives up after ten.
	t.ResponseHeaderTimeout = 10 * time.Minute
	return t
}

// Open starts a session with a fresh token. The session ends when ctx ends
// or Session.Close is called.
func (p *Proxy) Open(ctx context.Context) (ovrlrd.ModelSession, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	token := rand.Text()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	p.nextID++
	sctx, cancel := context.WithCancel(ctx)
	s := &Session{
		p:      p,
		id:     fmt.Sprintf("s%d", p.nextID),
		token:  token,
		base:   "http://" + p.addr + "/t/" + token,
		ctx:    sctx,
		cancel: cancel,
		slots:  make(chan struct{}, maxInFlight),
		asked:  make(chan struct{}),
	}
	p.sessions[tokenKey(token)] = s
	context.AfterFunc(sctx, func() { p.forget(s) })
	return s, nil
}

// listen binds 127.0.0.1:0 and serves.
func (p *Proxy) listen() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("modelproxy: listen: %w", err)
	}
	p.addr = ln.Addr().String()
	p.srv = &http.Server{
		Handler:           http.HandlerFunc(p.serveHTTP),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
		ConnState: func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				p.running.Add(1)
			case http.StateClosed, http.StateHijacked:
				p.running.Done()
			}
		},
	}
	p.running.Go(func() { p.srv.Serve(ln) }) // returns http.ErrServerClosed after Close
	return nil
}

// Close ends every session, stops listening and waits for every connection
// and request to finish. Open fails afterwards.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	// Safe under the lock: a session's end runs forget in a goroutine of
	// its own.
	for _, s := range p.sessions {
		s.Close()
	}
	p.mu.Unlock()
	err := p.srv.Close()
	p.running.Wait()
	p.transport.CloseIdleConnections()
	return err
}

// forget removes s from the live sessions; its token is refused from now on.
func (p *Proxy) forget(s *Session) {
	key := tokenKey(s.token)
	p.mu.Lock()
	if p.sessions[key] == s {
		delete(p.sessions, key)
	}
	p.mu.Unlock()
}

// lookup returns the live session holding token.
func (p *Proxy) lookup(token string) *Session {
	p.mu.Lock()
	s := p.sessions[tokenKey(token)]
	p.mu.Unlock()
	if s == nil || s.ctx.Err() != nil {
		return nil
	}
	return s
}
