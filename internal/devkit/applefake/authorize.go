package applefake

import (
	"crypto/rand"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// AuthorizePath is where the stand-in answers Sign in with Apple's
// authorization requests, as appleid.apple.com does.
const AuthorizePath = "/auth/authorize"

// DemoUser is who every authorization signs in: the stand-in asks nobody.
var DemoUser = Claims{Subject: "000000.demo.user", Email: "demo@example.com", EmailVerified: true}

// AllowClient makes clientID (a Services ID) one that authorization
// requests may name; any other is refused, as Apple refuses an unknown
// client.
func (s *Server) AllowClient(clientID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(s.clients, clientID) {
		s.clients = append(s.clients, clientID)
	}
}

func (s *Server) allowed(clientID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Contains(s.clients, clientID)
}

// authorize answers GET /auth/authorize as Apple does for a web page that
// asks for no scope: at once (there is nobody to ask), with a redirect to
// redirect_uri whose fragment holds a code, an identity token for
// client_id carrying the request's nonce, and its state. Only what Apple's
// flow allows without a form post is served: response_type "code
// id_token" and response_mode "fragment". The redirect goes to loopback
// only: the token is a real credential for this machine's server.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	clientID, redirect, state, nonce := q.Get("client_id"), q.Get("redirect_uri"), q.Get("state"), q.Get("nonce")
	switch {
	case clientID == "" || !s.allowed(clientID):
		http.Error(w, "invalid_client", http.StatusBadRequest)
		return
	case !loopbackURL(redirect):
		http.Error(w, "invalid_request: redirect_uri must be an http(s) URL on loopback", http.StatusBadRequest)
		return
	case q.Get("response_type") != "code id_token":
		http.Error(w, "unsupported_response_type: want \"code id_token\"", http.StatusBadRequest)
		return
	case q.Get("response_mode") != "fragment":
		http.Error(w, "invalid_request: response_mode must be fragment", http.StatusBadRequest)
		return
	case q.Get("scope") != "":
		// Apple's rule: a scope needs response_mode form_post.
		http.Error(w, "invalid_request: scope requires response_mode form_post", http.StatusBadRequest)
		return
	case len(state) > 512 || len(nonce) > 512:
		http.Error(w, "invalid_request: state or nonce too long", http.StatusBadRequest)
		return
	}
	user := DemoUser
	user.Audience = clientID
	user.Extra = map[string]any{"nonce": nonce, "nonce_supported": true}
	answer := url.Values{"code": {"c" + strings.ToLower(rand.Text())}, "id_token": {s.Mint(user)}}
	if state != "" {
		answer.Set("state", state)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Location", redirect+"#"+answer.Encode())
	w.WriteHeader(http.StatusFound)
}

// loopbackURL reports whether raw is an absolute http(s) URL without a
// fragment on a loopback address or localhost.
func loopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.Fragment != "" || strings.Contains(raw, "#") {
		return false
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
