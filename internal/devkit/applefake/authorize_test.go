package applefake_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/apple"
	"github.com/ovrlrd/cloud/internal/devkit/applefake"
)

const client = "com.example.web"

// noRedirects is a client that shows the stand-in's redirect rather than
// following it.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func authorize(t *testing.T, s *applefake.Server, q url.Values) *http.Response {
	t.Helper()
	resp, err := noRedirects.Get(s.AuthorizeURL + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func request(change func(url.Values)) url.Values {
	q := url.Values{
		"client_id":     {client},
		"redirect_uri":  {"http://127.0.0.1:3000/web/"},
		"response_type": {"code id_token"},
		"response_mode": {"fragment"},
		"state":         {"state-123"},
		"nonce":         {"hash-of-the-nonce"},
	}
	if change != nil {
		change(q)
	}
	return q
}

// An authorization request gets what Apple answers a web page: a redirect
// to redirect_uri with a fragment holding a code, an identity token for the
// client with the request's nonce, and the state; the verifier accepts the
// token with the raw nonce whose hash was sent.
func TestAuthorizeRedirectsWithAToken(t *testing.T) {
	s := applefake.New()
	defer s.Close()
	s.AllowClient(client)
	raw := "the-raw-nonce"
	sum := sha256.Sum256([]byte(raw))
	resp := authorize(t, s, request(func(q url.Values) { q.Set("nonce", hex.EncodeToString(sum[:])) }))
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if loc.Scheme+"://"+loc.Host+loc.Path != "http://127.0.0.1:3000/web/" || loc.RawQuery != "" {
		t.Fatalf("Location %s, want the redirect_uri", loc)
	}
	f, err := url.ParseQuery(loc.Fragment)
	if err != nil {
		t.Fatal(err)
	}
	if f.Get("state") != "state-123" || f.Get("code") == "" || f.Get("id_token") == "" {
		t.Fatalf("fragment %v", f)
	}
	if got := s.Requests(); got != 0 {
		t.Errorf("Requests = %d: an authorization is not a request for the keys", got)
	}
	v, err := apple.NewVerifier(context.Background(), apple.Options{JWKSURL: s.URL, ServicesIDs: []string{client}})
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(context.Background(), f.Get("id_token"), raw)
	if err != nil || id.Subject != applefake.DemoUser.Subject || !id.EmailVerified {
		t.Fatalf("Verify = %+v, %v", id, err)
	}
	if _, err := v.Verify(context.Background(), f.Get("id_token"), "another"); err == nil {
		t.Fatal("the token verified with another nonce")
	}

	// No state asked, none answered.
	resp = authorize(t, s, request(func(q url.Values) { q.Del("state") }))
	if resp.StatusCode != http.StatusFound || strings.Contains(resp.Header.Get("Location"), "state=") {
		t.Fatalf("without state: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// What Apple refuses, or the stand-in will not serve, is a 400 and no
// token: an unknown client, a redirect off loopback (the token is a real
// credential for this machine's server), another response type or mode,
// and a scope, which Apple answers only with a form post.
func TestAuthorizeRefuses(t *testing.T) {
	s := applefake.New()
	defer s.Close()
	s.AllowClient(client)
	for name, change := range map[string]func(url.Values){
		"unknown client":      func(q url.Values) { q.Set("client_id", "com.example.other") },
		"no client":           func(q url.Values) { q.Del("client_id") },
		"redirect elsewhere":  func(q url.Values) { q.Set("redirect_uri", "https://evil.example/web/") },
		"redirect to a LAN":   func(q url.Values) { q.Set("redirect_uri", "http://192.168.1.20:3000/web/") },
		"loopback lookalike":  func(q url.Values) { q.Set("redirect_uri", "http://127.0.0.1.evil.example/web/") },
		"userinfo trick":      func(q url.Values) { q.Set("redirect_uri", "http://127.0.0.1@evil.example/web/") },
		"relative redirect":   func(q url.Values) { q.Set("redirect_uri", "/web/") },
		"another scheme":      func(q url.Values) { q.Set("redirect_uri", "javascript://127.0.0.1/%0aalert(1)") },
		"redirect with #":     func(q url.Values) { q.Set("redirect_uri", "http://127.0.0.1:3000/web/#x") },
		"no redirect":         func(q url.Values) { q.Del("redirect_uri") },
		"code only":           func(q url.Values) { q.Set("response_type", "code") },
		"query mode":          func(q url.Values) { q.Set("response_mode", "query") },
		"form post":           func(q url.Values) { q.Set("response_mode", "form_post") },
		"scope with fragment": func(q url.Values) { q.Set("scope", "name email") },
		"long state":          func(q url.Values) { q.Set("state", strings.Repeat("s", 513)) },
	} {
		resp := authorize(t, s, request(change))
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("%s: %d %s, want 400", name, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	for _, redirect := range []string{"http://localhost:3000/web/", "http://[::1]:3000/web/", "https://127.0.0.2/web/"} {
		if resp := authorize(t, s, request(func(q url.Values) { q.Set("redirect_uri", redirect) })); resp.StatusCode != http.StatusFound {
			t.Errorf("%s: %d, want 302", redirect, resp.StatusCode)
		}
	}
	resp, err := http.Post(s.AuthorizeURL, "application/x-www-form-urlencoded", strings.NewReader(request(nil).Encode()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", resp.StatusCode)
	}
}
