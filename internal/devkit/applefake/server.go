// Package applefake stands in for Apple's JWK Set endpoint on loopback and
// mints identity tokens signed with its keys, for tests of code that verifies
// Sign in with Apple. It also answers Sign in with Apple on the web's
// authorization requests (authorize.go), for make dev's web client.
package applefake

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
)

// Mode is how the endpoint answers.
type Mode int

const (
	Up          Mode = iota // serves the JWK Set
	Unavailable             // 503
	Garbage                 // 200 with a body that is not a JWK Set
	Hang                    // never answers; the client must give up
)

// Server serves {"keys":[...]} at URL, and authorization requests at
// AuthorizeURL.
type Server struct {
	URL          string
	AuthorizeURL string

	srv *httptest.Server

	requests atomic.Int32 // received, answered or not

	mu      sync.Mutex
	keys    []key // published; the last one signs by default
	mode    Mode
	clients []string // Services IDs authorization requests may name
}

type key struct {
	kid  string
	priv *rsa.PrivateKey
}

// New starts a server publishing one key.
func New() *Server {
	s := &Server{keys: []key{newKey()}}
	mux := http.NewServeMux()
	mux.HandleFunc(AuthorizePath, s.authorize)
	mux.HandleFunc("/", s.serve)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL + "/auth/keys"
	s.AuthorizeURL = s.srv.URL + AuthorizePath
	return s
}

// Close stops the server. Closing the connections first ends the requests
// left hanging, which Close would otherwise wait for.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// SetMode changes how the endpoint answers from the next request on.
func (s *Server) SetMode(m Mode) {
	s.mu.Lock()
	s.mode = m
	s.mu.Unlock()
}

// Requests counts the requests for the keys received, answered or not.
func (s *Server) Requests() int { return int(s.requests.Load()) }

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
	s.keys = slices.DeleteFunc(s.keys, func(k key) bool { return k.kid == kid })
}

// Kid is the id of the key Mint signs with.
func (s *Server) Kid() string { return s.current().kid }

func (s *Server) current() key {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[len(s.keys)-1]
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	s.mu.Lock()
	mode, keys := s.mode, slices.Clone(s.keys)
	s.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	switch mode {
	case Unavailable:
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	case Garbage:
		w.Write([]byte(`<html>not a key set`))
	case Hang:
		<-r.Context().Done()
	default:
		json.NewEncoder(w).Encode(jwkSet(keys))
	}
}

// jwkSet is written here rather than with the verifier's JWK library so the
// tests check that library against an independent encoding.
func jwkSet(keys []key) map[string][]map[string]string {
	set := make([]map[string]string, 0, len(keys))
	for _, k := range keys {
		set = append(set, map[string]string{
			"kty": "RSA", "kid": k.kid, "use": "sig", "alg": "RS256",
			"n": base64.RawURLEncoding.EncodeToString(k.priv.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.priv.E)).Bytes()),
		})
	}
	return map[string][]map[string]string{"keys": set}
}

func newKey() key {
	return key{kid: rand.Text()[:8], priv: NewKey()}
}

// NewKey returns a fresh RSA 2048 key that no Server publishes.
func NewKey() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}
