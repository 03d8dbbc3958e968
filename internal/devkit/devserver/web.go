package devserver

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/ovrlrd/cloud/internal/api"
	"github.com/ovrlrd/cloud/internal/apple"
	"github.com/ovrlrd/cloud/internal/devkit/applefake"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/web"
)

// LocalServicesID is the web client's audience under make dev's Apple
// stand-in, unless APPLE_SERVICES_ID names another.
const LocalServicesID = "com.ovrlrd.web.local"

// LocalSignInLabel is what the web client's local sign-in button says: it is
// not Apple.
const LocalSignInLabel = "Local sign-in (make dev's Apple stand-in, not Apple)"

// LocalAppleLabel is what the web client's Sign in with Apple button says
// when it goes to the stand-in's authorization endpoint: not Apple either.
const LocalAppleLabel = "Sign in with Apple: make dev's stand-in, not Apple"

// maxNameLength bounds the name the local sign-in derives a user from, in
// characters.
const maxNameLength = 100

// Paths of make dev's own web routes. Deployed, /web/* is the web client's
// files and nothing else: these exist on this machine only.
const (
	webConfigPath    = "/web/config.json"
	webIdentityToken = "/web/dev/identity-token"
)

// webRoutes serve what the gateway routes to the web client's origin: its
// files (web.Handler), and make dev's two routes that let the web client
// sign in through the Apple stand-in. With real Apple configured there is
// no stand-in, the configuration says so and no token is minted.
type webRoutes struct {
	files http.Handler
	apple *applefake.Server // nil: Apple itself
	// audience is the first Services ID; "" leaves the local sign-in off.
	// key is the API's own check of the API key: a token is minted only
	// for a caller that has the key, as POST /auth asks. Both set once,
	// before the server serves.
	audience string
	key      api.APIKey
}

func newWebRoutes(dir string, apple *applefake.Server) *webRoutes {
	return &webRoutes{files: web.Handler(dir), apple: apple}
}

// configure takes the configuration's Services IDs (the tokens are minted
// for the first) and the API key.
func (h *webRoutes) configure(servicesIDs []string, apiKey string) {
	h.audience, h.key = "", api.NewAPIKey(apiKey)
	if len(servicesIDs) > 0 {
		h.audience = servicesIDs[0]
	}
	if h.local() {
		h.apple.AllowClient(h.audience)
	}
}

// local reports whether the web client signs in through the stand-in.
func (h *webRoutes) local() bool { return h.apple != nil && h.audience != "" }

func (h *webRoutes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case webConfigPath:
		h.config(w, r)
	case webIdentityToken:
		h.identityToken(w, r)
	default:
		h.files.ServeHTTP(w, r)
	}
}

// webConfig is /web/config.json: how the web client signs in here. Deployed,
// the same file (deploy.yml's) holds Apple alone, or nothing.
type webConfig struct {
	SignIn string       `json:"signIn,omitempty"` // "local": the local sign-in
	Label  string       `json:"label,omitempty"`  // the local sign-in's button
	Apple  *appleConfig `json:"apple,omitempty"`  // Sign in with Apple on the web
}

// appleConfig is how the web client signs in with Apple: the Services ID,
// and, under make dev, the stand-in's authorization endpoint and a label
// that says it is not Apple. redirectURI is left to the page's default.
type appleConfig struct {
	ClientID     string `json:"clientId"`
	AuthorizeURL string `json:"authorizeURL,omitempty"`
	Label        string `json:"label,omitempty"`
}

func (h *webRoutes) config(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeWebError(w, ovrlrd.Errorf(ovrlrd.EINVALID, "Method not allowed"), http.StatusMethodNotAllowed)
		return
	}
	var c webConfig
	switch {
	case h.local():
		c = webConfig{SignIn: "local", Label: LocalSignInLabel, Apple: &appleConfig{
			ClientID: h.audience, AuthorizeURL: h.apple.AuthorizeURL, Label: LocalAppleLabel,
		}}
	case h.audience != "":
		c.Apple = &appleConfig{ClientID: h.audience}
	}
	writeWebJSON(w, http.StatusOK, c)
}

// identityTokenRequest names the local user to sign in, and the raw nonce
// the page will send POST /auth: a Services ID's token must carry its hash.
type identityTokenRequest struct {
	Name  string `json:"name"`
	Nonce string `json:"nonce"`
}

func (q *identityTokenRequest) Validate() error {
	q.Name = strings.TrimSpace(q.Name)
	switch {
	case q.Name == "":
		return ovrlrd.Errorf(ovrlrd.EINVALID, "Field \"name\" is required.")
	case utf8.RuneCountInString(q.Name) > maxNameLength:
		return ovrlrd.Errorf(ovrlrd.EINVALID, "Field \"name\" is longer than %d characters.", maxNameLength)
	case q.Nonce == "" || len(q.Nonce) > apple.MaxNonceBytes:
		return ovrlrd.Errorf(ovrlrd.EINVALID, "Field \"nonce\" must be 1 to %d characters.", apple.MaxNonceBytes)
	}
	return nil
}

// identityToken mints an identity token with the Apple stand-in, for the
// Services ID, whose subject the name decides: the same name signs the
// same user in again. POST /auth verifies it as it would Apple's. The
// page's raw nonce is hashed here rather than by the page: a page opened
// at a LAN address is no secure context, so it has no crypto.subtle.
//
// Only a request a page could not send across origins without asking
// first is answered: JSON (a form or text/plain body would be a simple
// request, sent by any page the developer visits), and to a host named by
// address or as localhost (a page on a domain rebound to 127.0.0.1 would
// be same-origin otherwise).
func (h *webRoutes) identityToken(w http.ResponseWriter, r *http.Request) {
	if !h.local() {
		writeWebError(w, ovrlrd.Errorf(ovrlrd.ENOTFOUND, "Not found"), 0)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeWebError(w, ovrlrd.Errorf(ovrlrd.EINVALID, "Method not allowed"), http.StatusMethodNotAllowed)
		return
	}
	if !localHost(r.Host) {
		writeWebError(w, ovrlrd.Errorf(ovrlrd.EFORBIDDEN, "The local sign-in answers at an address or localhost only."), 0)
		return
	}
	// What reaches this machine's port (another user of it, a turn's
	// tool) mints nothing without the key.
	if err := h.key.Check(r); err != nil {
		writeWebError(w, err, 0)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeWebError(w, ovrlrd.Errorf(ovrlrd.EINVALID, "Content-Type must be application/json."), http.StatusUnsupportedMediaType)
		return
	}
	var q identityTokenRequest
	if err := api.Decode(r, &q); err != nil {
		writeWebError(w, err, 0)
		return
	}
	token := h.apple.Mint(applefake.Claims{Subject: localSubject(q.Name), Audience: h.audience, Extra: map[string]any{"nonce": apple.NonceHash(q.Nonce)}})
	writeWebJSON(w, http.StatusOK, map[string]string{"identityToken": token})
}

// localSubject is the Apple user id the local sign-in gives name, marked
// local as the demo user's is (000000.demo.user).
func localSubject(name string) string {
	sum := sha256.Sum256([]byte("ovrlrd make dev web sign-in\x00" + name))
	return "000000.local." + hex.EncodeToString(sum[:16])
}

// localHost reports whether host (a Host header) is an IP address or
// localhost.
func localHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return net.ParseIP(host) != nil || strings.EqualFold(host, "localhost")
}

func (h *webRoutes) banner(out io.Writer, addr string) {
	fmt.Fprintf(out, "Web client: http://%s/web/", addr)
	if h.local() {
		fmt.Fprint(out, " (local sign-in, and Sign in with Apple, through the Apple stand-in)")
	}
	fmt.Fprint(out, "\n\n")
}

// writeWebError answers err as the API does, {"error": "..."}, with its
// status unless status is set.
func writeWebError(w http.ResponseWriter, err error, status int) {
	if status == 0 {
		status = api.StatusOf(err)
	}
	writeWebJSON(w, status, map[string]string{"error": ovrlrd.ErrorMessage(err)})
}

// writeWebJSON answers as the API does, with the web client's headers.
func writeWebJSON(w http.ResponseWriter, status int, v any) {
	for k, v := range web.SecurityHeaders() {
		w.Header().Set(k, v)
	}
	api.WriteJSON(w, status, v)
}
