// Package applefake stands in for Apple's JWK Set endpoint on loopback and
// mints identity tokens signed with its keys, for tests of code that verifies
// Sign in with Apple.
package applefake

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
)

// Mode is how the endpoint answers.
type Mode int

const (
	Up          Mode = iota // serves the JWK Set
	Unavailable             // 503
	Garbage                 // 200 with a body that is not a JWK Set
	Hang                    // never answers; the client must give up
)

// Server serves {"keys":[...]} at URL.
type Server struct {
	URL string

	srv       *httptest.Server
	stop      chan struct{}
	closeOnce sync.Once

	mu       sync.Mutex
	keys     []key // published; the last one signs by default
	mode     Mode
	requests int
}

type key struct {
	kid  string
	priv *rsa.PrivateKey
}

// New starts a server publishing one key.
func New() *Server {
	s := &Server{stop: make(chan struct{})}
	s.keys = []key{newKey()}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL + "/auth/keys"
	return s
}

// Close stops the server, releasing any hanging request first.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.srv.Close()
	})
}

// SetMode changes how the endpoint answers from the next request on.
func (s *Server) SetMode(m Mode) {
	s.mu.Lock()
	s.mode = m
	s.mu.Unlock()
}

// Down switches between Unavailable and Up.
func (s *Server) Down(down bool) {
	if down {
		s.SetMode(Unavailable)
	} else {
		s.SetMode(Up)
	}
}

// Requests counts the requests received, answered or not.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Rotate publishes a new key and makes it the one Mint signs with; the
// older keys stay published until Retire.
func (s *Server) Rotate() (kid string) {
	k := newKey()
	s.mu.Lock()
	s.keys = append(s.keys, k)
	s.mu.Unlock()
	return k.kid
}

// Retire stops publishing kid.
func (s *Server) Retire(kid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, k := range s.keys {
		if k.kid == kid {
			s.keys = append(s.keys[:i:i], s.keys[i+1:]...)
			return
		}
	}
}

// Kid is the id of the key Mint signs with.
func (s *Server) Kid() string { return s.current().kid }

// PrivateKey is the key Mint signs with.
func (s *Server) PrivateKey() *rsa.PrivateKey { return s.current().priv }

func (s *Server) current() key {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[len(s.keys)-1]
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	mode, keys := s.mode, append([]key(nil), s.keys...)
	s.mu.Unlock()

	switch mode {
	case Unavailable:
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	case Garbage:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`<html>not a key set`))
	case Hang:
		select {
		case <-r.Context().Done():
		case <-s.stop:
		}
	default:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(jwkSet(keys))
	}
}

type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// jwkSet is written here rather than with the verifier's JWK library so the
// tests check that library against an independent encoding.
func jwkSet(keys []key) map[string][]jwk {
	set := make([]jwk, 0, len(keys))
	for _, k := range keys {
		pub := k.priv.PublicKey
		set = append(set, jwk{
			Kty: "RSA", Kid: k.kid, Use: "sig", Alg: "RS256",
			N: base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			E: base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		})
	}
	return map[string][]jwk{"keys": set}
}

func newKey() key {
	return key{kid: randomKID(), priv: NewKey()}
}

// NewKey returns a fresh RSA 2048 key that no Server publishes.
func NewKey() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

func randomKID() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
