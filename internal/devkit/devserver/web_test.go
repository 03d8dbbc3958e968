package devserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ovrlrd/cloud/internal/apple"
	"github.com/ovrlrd/cloud/internal/devkit/applefake"
	"github.com/ovrlrd/cloud/internal/devkit/devenv"
	"github.com/ovrlrd/cloud/internal/devkit/sandboxtest"
	"github.com/ovrlrd/cloud/internal/web"
)

// webRequest sends one request to h and returns the status and body.
// testKey is the API key of the unit tests' routes, testNonce a page's raw
// nonce.
const (
	testKey   = "test-api-key"
	testNonce = "raw-nonce-of-the-page"
)

func webRequest(t *testing.T, h http.Handler, method, path, contentType, body string) (int, string, http.Header) {
	t.Helper()
	r := httptest.NewRequest(method, "http://127.0.0.1:3000"+path, strings.NewReader(body))
	r.Header.Set("X-API-Key", testKey)
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, w.Body.String(), w.Result().Header
}

// The web client learns from config.json how it signs in: through the
// Apple stand-in, locally or with Sign in with Apple's redirects to it,
// with labels that say it is not Apple, only while the stand-in runs and a
// Services ID names the tokens' audience; with Apple, through Apple, for
// the first Services ID; with none, not at all.
func TestWebConfig(t *testing.T) {
	fake := applefake.New()
	defer fake.Close()
	for _, c := range []struct {
		name     string
		apple    *applefake.Server
		services []string
		want     string
	}{
		{"stand-in", fake, []string{"com.example.web", "com.example.other"}, `{"signIn":"local","label":"Local sign-in (make dev's Apple stand-in, not Apple)",` +
			`"apple":{"clientId":"com.example.web","authorizeURL":"` + fake.AuthorizeURL + `","label":"Sign in with Apple: make dev's stand-in, not Apple"}}`},
		{"Apple", nil, []string{"com.example.web", "com.example.other"}, `{"apple":{"clientId":"com.example.web"}}`},
		{"stand-in without a Services ID", fake, nil, `{}`},
		{"Apple without a Services ID", nil, nil, `{}`},
	} {
		h := newWebRoutes(t.TempDir(), c.apple)
		h.configure(c.services, testKey)
		status, body, header := webRequest(t, h, "GET", "/web/config.json", "", "")
		if status != 200 || body != c.want || header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %s (%s), want %s", c.name, status, body, header.Get("Content-Type"), c.want)
		}
		if got := header.Get("Content-Security-Policy"); got != web.ContentSecurityPolicy {
			t.Errorf("%s: CSP %q", c.name, got)
		}
		if status, _, _ := webRequest(t, h, "POST", "/web/config.json", "application/json", "{}"); status != http.StatusMethodNotAllowed {
			t.Errorf("%s: POST config.json = %d", c.name, status)
		}
	}
}

// The token route mints, with the stand-in, a token Apple's verifier
// accepts for the first Services ID, whose subject the name decides; it
// answers only a JSON body of one short name, and not at all with Apple.
func TestWebIdentityToken(t *testing.T) {
	fake := applefake.New()
	defer fake.Close()
	h := newWebRoutes(t.TempDir(), fake)
	h.configure([]string{"com.example.web", "com.example.other"}, testKey)
	ctx := context.Background()
	verifier, err := apple.NewVerifier(ctx, apple.Options{JWKSURL: fake.URL, ServicesIDs: []string{"com.example.web"}})
	if err != nil {
		t.Fatal(err)
	}
	mint := func(body string) string {
		t.Helper()
		status, got, _ := webRequest(t, h, "POST", webIdentityToken, "application/json; charset=utf-8", body)
		var out struct{ IdentityToken string }
		if err := json.Unmarshal([]byte(got), &out); status != 200 || err != nil || out.IdentityToken == "" {
			t.Fatalf("%s: %d %s", body, status, got)
		}
		return out.IdentityToken
	}
	subject := func(token string) string {
		t.Helper()
		id, err := verifier.Verify(ctx, token, testNonce)
		if err != nil {
			t.Fatalf("the verifier refuses the token: %v", err)
		}
		return id.Subject
	}
	ada, again, bob := subject(mint(`{"name":"Ada","nonce":"`+testNonce+`"}`)), subject(mint(`{"name":" Ada ","nonce":"`+testNonce+`"}`)), subject(mint(`{"name":"Bob","nonce":"`+testNonce+`"}`))
	if ada != again || ada == bob || !strings.HasPrefix(ada, "000000.local.") {
		t.Errorf("subjects %q, %q (the same name), %q", ada, again, bob)
	}
	if _, err := verifier.Verify(ctx, mint(`{"name":"Ada","nonce":"`+testNonce+`"}`), "another"); err == nil {
		t.Error("the minted token verifies with another nonce")
	}
	if aud := audience(t, mint(`{"name":"`+strings.Repeat("é", maxNameLength)+`","nonce":"`+strings.Repeat("n", apple.MaxNonceBytes)+`"}`)); aud != "com.example.web" {
		t.Errorf("audience %q, want the first Services ID", aud)
	}

	for _, c := range []struct {
		name, method, contentType, body string
		want                            int
	}{
		{"no content type", "POST", "", `{"name":"Ada","nonce":"n"}`, http.StatusUnsupportedMediaType},
		{"no nonce", "POST", "application/json", `{"name":"Ada"}`, http.StatusBadRequest},
		{"a long nonce", "POST", "application/json", `{"name":"Ada","nonce":"` + strings.Repeat("n", apple.MaxNonceBytes+1) + `"}`, http.StatusBadRequest},
		{"a form", "POST", "application/x-www-form-urlencoded", `name=Ada`, http.StatusUnsupportedMediaType},
		{"text", "POST", "text/plain", `{"name":"Ada"}`, http.StatusUnsupportedMediaType},
		{"not JSON", "POST", "application/json", `name=Ada`, http.StatusBadRequest},
		{"an unknown field", "POST", "application/json", `{"name":"Ada","nonce":"n","sub":"001234.x.0123"}`, http.StatusBadRequest},
		{"no name", "POST", "application/json", `{}`, http.StatusBadRequest},
		{"a blank name", "POST", "application/json", `{"name":"  "}`, http.StatusBadRequest},
		{"a long name", "POST", "application/json", `{"name":"` + strings.Repeat("a", maxNameLength+1) + `"}`, http.StatusBadRequest},
		{"a number", "POST", "application/json", `{"name":7}`, http.StatusBadRequest},
		{"two objects", "POST", "application/json", `{"name":"Ada"}{"name":"Bob"}`, http.StatusBadRequest},
		{"a GET", "GET", "", "", http.StatusMethodNotAllowed},
	} {
		status, body, header := webRequest(t, h, c.method, webIdentityToken, c.contentType, c.body)
		var e struct{ Error string }
		if status != c.want || json.Unmarshal([]byte(body), &e) != nil || e.Error == "" || header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %s, want %d and a JSON error", c.name, status, body, c.want)
		}
	}

	// A page on a domain rebound to 127.0.0.1 would be same-origin.
	for host, want := range map[string]int{"evil.example:3000": 403, "localhost:3000": 200, "[::1]:3000": 200, "192.168.1.20:3000": 200} {
		r := httptest.NewRequest("POST", "http://"+host+webIdentityToken, strings.NewReader(`{"name":"Ada","nonce":"n"}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-API-Key", testKey)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("Host %s: %d %s, want %d", host, w.Code, w.Body, want)
		}
	}

	// Without the API key, or with another, nothing is minted.
	for _, key := range []string{"", "wrong"} {
		r := httptest.NewRequest("POST", "http://127.0.0.1:3000"+webIdentityToken, strings.NewReader(`{"name":"Ada","nonce":"n"}`))
		r.Header.Set("Content-Type", "application/json")
		if key != "" {
			r.Header.Set("X-API-Key", key)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 401 || strings.Contains(w.Body.String(), "identityToken") {
			t.Errorf("key %q: %d %s", key, w.Code, w.Body)
		}
	}

	// With Apple itself, no token: the route is not there.
	real := newWebRoutes(t.TempDir(), nil)
	real.configure([]string{"com.example.web"}, testKey)
	if status, body, _ := webRequest(t, real, "POST", webIdentityToken, "application/json", `{"name":"Ada","nonce":"n"}`); status != 404 || strings.Contains(body, "identityToken") {
		t.Errorf("with Apple: %d %s", status, body)
	}
}

// audience reads a token's aud without verifying it.
func audience(t *testing.T, token string) string {
	t.Helper()
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
		t.Fatal(err)
	}
	aud, err := claims.GetAudience()
	if err != nil || len(aud) != 1 {
		t.Fatalf("aud %v %v", aud, err)
	}
	return aud[0]
}

// Every other path under /web/ is the web client's files, from the folder.
func TestWebServesTheFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<!doctype html><title>Ovrlrd</title>"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := newWebRoutes(dir, nil)
	if status, body, _ := webRequest(t, h, "GET", "/web/", "", ""); status != 200 || !strings.Contains(body, "<title>Ovrlrd</title>") {
		t.Errorf("/web/: %d %s", status, body)
	}
	if status, _, _ := webRequest(t, h, "GET", "/web/dev/other", "", ""); status != 404 {
		t.Errorf("/web/dev/other: %d", status)
	}
}

// make dev names the web client's Services ID when it runs the Apple
// stand-in, unless the developer did; with Apple itself it names none.
func TestDemoSettingsNameTheServicesID(t *testing.T) {
	for _, c := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"stand-in", map[string]string{}, LocalServicesID},
		{"the developer's", map[string]string{"APPLE_SERVICES_ID": "com.example.web"}, ""},
		{"Apple", map[string]string{"APPLE_JWKS_URL": "https://appleid.apple.com/auth/keys"}, ""},
	} {
		d, env, err := demoSettings(func(k string) string { return c.env[k] }, "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		d.close()
		if env["APPLE_SERVICES_ID"] != c.want {
			t.Errorf("%s: APPLE_SERVICES_ID %q, want %q", c.name, env["APPLE_SERVICES_ID"], c.want)
		}
	}
}

// startDev runs the server over a folder of its own, with any free ports,
// until the test ends.
func startDev(t *testing.T, extra map[string]string) Info {
	t.Helper()
	env := map[string]string{"DEV_DATA_DIR": sandboxtest.Dir(t), "LISTEN_ADDR": "127.0.0.1:0", "DEV_DYNAMODB_PORT": "0", "DEV_S3_PORT": "0", "DEV_GIT_PORT": "0"}
	for k, v := range extra {
		env[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan Info, 1)
	out := &devenv.Buffer{}
	go func() {
		done <- Run(ctx, Options{Getenv: func(k string) string { return env[k] }, Out: out, Ready: func(i Info) { ready <- i }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dev: %v", err)
		}
	})
	select {
	case info := <-ready:
		return info
	case err := <-done:
		done <- err // for the clean-up
		t.Fatalf("dev stopped before serving: %v\n%s", err, out.String())
		return Info{}
	}
}

// send sends one request to the running server and decodes its JSON
// answer into v, if given.
func send(t *testing.T, method, url, contentType, body string, v any, header ...string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s %s: %d %q: %v", method, url, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

// make dev, end to end: the gateway serves the web client's files from
// WEB_DIR, and its local sign-in mints a token, for make dev's Services ID,
// that POST /auth accepts with the API key Ready reports.
func TestDevWebSignIn(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<!doctype html><title>Ovrlrd web</title>"), 0o644); err != nil {
		t.Fatal(err)
	}
	info := startDev(t, map[string]string{"WEB_DIR": dir})
	base := "http://" + info.Addr
	if info.APIKey == "" {
		t.Fatal("Ready reports no API key")
	}

	req, _ := http.NewRequest("GET", base+"/web/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "Ovrlrd web") {
		t.Errorf("/web/: %d %s", resp.StatusCode, page)
	}

	var cfg webConfigJSON
	if status := send(t, "GET", base+"/web/config.json", "", "", &cfg); status != 200 || cfg.SignIn != "local" || cfg.Label != LocalSignInLabel ||
		cfg.Apple == nil || cfg.Apple.ClientID != LocalServicesID || cfg.Apple.Label != LocalAppleLabel || cfg.Apple.AuthorizeURL == "" {
		t.Fatalf("config.json: %d %+v", status, cfg)
	}
	var e struct{ Error string }
	if status := send(t, "POST", base+"/web/dev/identity-token", "text/plain", `{"name":"Ada","nonce":"n"}`, &e, "X-API-Key", info.APIKey); status != 415 || e.Error == "" {
		t.Errorf("text/plain: %d %v", status, e)
	}
	if status := send(t, "POST", base+"/web/dev/identity-token", "application/json", `{"name":"Ada","nonce":"n","admin":true}`, &e, "X-API-Key", info.APIKey); status != 400 || e.Error == "" {
		t.Errorf("an unknown field: %d %v", status, e)
	}
	var tok struct{ IdentityToken string }
	if status := send(t, "POST", base+"/web/dev/identity-token", "application/json", `{"name":"Ada","nonce":"`+testNonce+`"}`, &tok, "X-API-Key", info.APIKey); status != 200 || tok.IdentityToken == "" {
		t.Fatalf("identity token: %d %v", status, tok)
	}
	if aud := audience(t, tok.IdentityToken); aud != LocalServicesID {
		t.Errorf("audience %q, want %q", aud, LocalServicesID)
	}
	grant := signInWeb(t, info, tok.IdentityToken)
	if status := send(t, "GET", base+"/chat", "", "", nil, "X-API-Key", info.APIKey, "Authorization", "Bearer "+grant); status != 200 {
		t.Errorf("GET /chat with the session: %d", status)
	}

	// Sign in with Apple's redirects, to the stand-in config.json names,
	// for make dev's Services ID and back to the web client.
	q := url.Values{
		"client_id": {cfg.Apple.ClientID}, "redirect_uri": {base + "/web/"},
		"response_type": {"code id_token"}, "response_mode": {"fragment"},
		"state": {"s1"}, "nonce": {hexSHA256(testNonce)},
	}
	noRedirects := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noRedirects.Get(cfg.Apple.AuthorizeURL + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound || !strings.HasPrefix(back.String(), base+"/web/#") {
		t.Fatalf("authorize: %d %s %v", resp.StatusCode, back, err)
	}
	f, _ := url.ParseQuery(back.Fragment)
	if f.Get("state") != "s1" {
		t.Errorf("state %q", f.Get("state"))
	}
	signInWeb(t, info, f.Get("id_token"))
}

// webConfigJSON is /web/config.json as the web client reads it.
type webConfigJSON struct {
	SignIn, Label string
	Apple         *struct{ ClientID, AuthorizeURL, RedirectURI, Label string }
}

func hexSHA256(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// signInWeb signs in with a Services ID's token through POST /auth, as the
// web client does, and returns the session token; without the nonce, or
// without the API key, the token is refused.
func signInWeb(t *testing.T, info Info, token string) string {
	t.Helper()
	base := "http://" + info.Addr
	body := func(fields map[string]string) string {
		b, _ := json.Marshal(fields)
		return string(b)
	}
	if status := send(t, "POST", base+"/auth", "application/json", body(map[string]string{"identityToken": token}), nil, "X-API-Key", info.APIKey); status != 401 {
		t.Errorf("POST /auth without the nonce: %d", status)
	}
	signIn := body(map[string]string{"identityToken": token, "nonce": testNonce})
	if status := send(t, "POST", base+"/auth", "application/json", signIn, nil, "X-API-Key", "wrong"); status != 401 {
		t.Errorf("POST /auth without the API key: %d", status)
	}
	var grant struct{ SessionToken, UserID string }
	if status := send(t, "POST", base+"/auth", "application/json", signIn, &grant, "X-API-Key", info.APIKey); status != 200 || grant.SessionToken == "" {
		t.Fatalf("POST /auth with the token and its nonce: %d %+v", status, grant)
	}
	return grant.SessionToken
}

// With Apple itself configured, the web client is told to sign in with
// Apple, and make dev mints nothing.
func TestDevWebSignInWithApple(t *testing.T) {
	fake := applefake.New() // stands in for Apple's keys: no stand-in of make dev's
	defer fake.Close()
	info := startDev(t, map[string]string{"APPLE_JWKS_URL": fake.URL, "APPLE_SERVICES_ID": "com.example.web", "ALLOW_OPEN_SIGNUP": "true"})
	base := "http://" + info.Addr
	var cfg webConfigJSON
	if status := send(t, "GET", base+"/web/config.json", "", "", &cfg); status != 200 || cfg.SignIn != "" || cfg.Apple == nil || *cfg.Apple != (struct{ ClientID, AuthorizeURL, RedirectURI, Label string }{ClientID: "com.example.web"}) {
		t.Errorf("config.json: %d %+v", status, cfg)
	}
	var e struct{ Error string }
	if status := send(t, "POST", base+"/web/dev/identity-token", "application/json", `{"name":"Ada","nonce":"n"}`, &e, "X-API-Key", info.APIKey); status != 404 {
		t.Errorf("identity token with Apple: %d %v", status, e)
	}
	// Apple's tokens for the Services ID are accepted with their nonce, as
	// the app's for its bundle id are without; another audience is not.
	signInWeb(t, info, fake.Mint(applefake.Claims{Subject: "001234.web.0001", Audience: "com.example.web", Extra: map[string]any{"nonce": hexSHA256(testNonce)}}))
	for aud, want := range map[string]int{applefake.Audience: 200, "com.example.other": 401} {
		body, _ := json.Marshal(map[string]string{"identityToken": fake.Mint(applefake.Claims{Subject: "001234.web.0001", Audience: aud})})
		if status := send(t, "POST", base+"/auth", "application/json", string(body), nil, "X-API-Key", info.APIKey); status != want {
			t.Errorf("POST /auth with a token for %s: %d, want %d", aud, status, want)
		}
	}
}
