package web_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/web"
)

// site makes a built web client in a folder of its own, next to a secret
// that must stay out of reach, and returns the client's folder.
func site(t *testing.T) string {
	t.Helper()
	top := t.TempDir()
	dir := filepath.Join(top, "web")
	files := map[string]string{
		"index.html":  "<!doctype html><title>ovrlrd</title>",
		"app.js":      "console.log(1)",
		"app.css":     "body{}",
		"icon.png":    "\x89PNG\r\n\x1a\n",
		"logo.svg":    "<svg xmlns='http://www.w3.org/2000/svg'/>",
		"config.json": `{"signIn":"apple"}`,
		"sub/x.js":    "x()",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(top, "secret.txt"), []byte("SECRET"), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"leak":    "../secret.txt",                  // a file outside
		"abs":     filepath.Join(top, "secret.txt"), // the same, absolute
		"up":      "..",                             // a folder outside
		"inner":   "app.js",                         // inside: allowed
		"sub/far": "../../secret.txt",
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// serve sends method target (a raw request target, sent as is) to h.
func serve(h http.Handler, method, target string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, target, nil))
	return w
}

func checkHeaders(t *testing.T, what string, w *httptest.ResponseRecorder) {
	t.Helper()
	for k, v := range web.SecurityHeaders() {
		if got := w.Header().Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("%s: %s %q, want %q", what, k, got, v)
		}
	}
	if got := w.Header().Get("Cache-Control"); got != "no-cache" {
		t.Errorf("%s: Cache-Control %q", what, got)
	}
}

func TestSecurityHeaders(t *testing.T) {
	want := map[string]string{
		"Content-Security-Policy":    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
		"X-Content-Type-Options":     "nosniff",
		"X-Frame-Options":            "DENY",
		"Referrer-Policy":            "no-referrer",
		"Permissions-Policy":         "camera=(), microphone=(), geolocation=()",
		"Cross-Origin-Opener-Policy": "same-origin",
		"Strict-Transport-Security":  "max-age=63072000",
	}
	got := web.SecurityHeaders()
	if len(got) != len(want) {
		t.Errorf("%d headers, want %d: %v", len(got), len(want), got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s %q, want %q", k, got[k], v)
		}
	}
	if web.ContentSecurityPolicy != want["Content-Security-Policy"] {
		t.Errorf("ContentSecurityPolicy %q", web.ContentSecurityPolicy)
	}
	// Each caller gets its own map.
	got["X-Frame-Options"] = "SAMEORIGIN"
	if web.SecurityHeaders()["X-Frame-Options"] != "DENY" {
		t.Error("SecurityHeaders shares its map")
	}
}

func TestHeadersOnEveryAnswer(t *testing.T) {
	h := web.Handler(site(t))
	for _, c := range []struct {
		method, target string
		status         int
	}{
		{"GET", "/web/app.js", 200},
		{"GET", "/web/", 200},
		{"HEAD", "/web/app.css", 200},
		{"GET", "/web/nope.js", 404},
		{"GET", "/web/sub/", 404},
		{"GET", "/web/%2e%2e/secret.txt", 404},
		{"GET", "/elsewhere", 404},
		{"GET", "/web", 301},
		{"POST", "/web/app.js", 405},
		{"DELETE", "/web/", 405},
	} {
		what := c.method + " " + c.target
		w := serve(h, c.method, c.target)
		if w.Code != c.status {
			t.Errorf("%s: %d, want %d", what, w.Code, c.status)
		}
		checkHeaders(t, what, w)
	}
	// And when there is nothing built.
	w := serve(web.Handler(filepath.Join(t.TempDir(), "missing")), "GET", "/web/")
	checkHeaders(t, "no build", w)
}

func TestIndexAndFiles(t *testing.T) {
	h := web.Handler(site(t))
	for _, c := range []struct{ target, body string }{
		{"/web/", "<!doctype html><title>ovrlrd</title>"},
		{"/web/index.html", "<!doctype html><title>ovrlrd</title>"},
		{"/web/app.js", "console.log(1)"},
		{"/web/sub/x.js", "x()"},
		{"/web/inner", "console.log(1)"}, // a link that stays inside
		{"/web/app%2ejs", "console.log(1)"},
	} {
		w := serve(h, "GET", c.target)
		if w.Code != 200 || w.Body.String() != c.body {
			t.Errorf("%s: %d %q, want %q", c.target, w.Code, w.Body, c.body)
		}
	}
}

// A typed address without its slash goes to the page, whose relative links
// need the slash; a name below it does not.
func TestWebWithoutSlash(t *testing.T) {
	h := web.Handler(site(t))
	for _, m := range []string{"GET", "HEAD"} {
		w := serve(h, m, "/web")
		if w.Code != http.StatusMovedPermanently || w.Header().Get("Location") != "/web/" {
			t.Errorf("%s /web: %d to %q, want 301 to /web/", m, w.Code, w.Header().Get("Location"))
		}
	}
	if w := serve(h, "POST", "/web"); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /web: %d, want 405", w.Code)
	}
	if w := serve(h, "GET", "/webapp"); w.Code != http.StatusNotFound {
		t.Errorf("GET /webapp: %d, want 404", w.Code)
	}
}

func TestContentTypes(t *testing.T) {
	h := web.Handler(site(t))
	for target, want := range map[string]string{
		"/web/":            "text/html; charset=utf-8",
		"/web/index.html":  "text/html; charset=utf-8",
		"/web/app.js":      "text/javascript; charset=utf-8",
		"/web/app.css":     "text/css; charset=utf-8",
		"/web/icon.png":    "image/png",
		"/web/logo.svg":    "image/svg+xml",
		"/web/config.json": "application/json",
	} {
		w := serve(h, "GET", target)
		if got := w.Header().Get("Content-Type"); w.Code != 200 || got != want {
			t.Errorf("%s: %d %q, want %q", target, w.Code, got, want)
		}
	}
}

func TestHead(t *testing.T) {
	h := web.Handler(site(t))
	w := serve(h, "HEAD", "/web/app.js")
	if w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("Content-Length") != strconv.Itoa(len("console.log(1)")) ||
		w.Header().Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Errorf("HEAD: %d %q %v", w.Code, w.Body, w.Header())
	}
	if w := serve(h, "HEAD", "/web/nope"); w.Code != 404 {
		t.Errorf("HEAD of a missing file: %d", w.Code)
	}
}

func TestOnlyGetAndHead(t *testing.T) {
	h := web.Handler(site(t))
	for _, m := range []string{"POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
		w := serve(h, m, "/web/app.js")
		if w.Code != 405 || w.Header().Get("Allow") != "GET, HEAD" || w.Body.String() != `{"error":"Method not allowed"}` ||
			w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %q %v", m, w.Code, w.Body, w.Header())
		}
	}
}

// No path reaches outside the folder, however it is spelled, nor lists a
// folder; each is a plain JSON 404.
func TestConfined(t *testing.T) {
	h := web.Handler(site(t))
	for _, target := range []string{
		"/web/../secret.txt",
		"/web/sub/../../secret.txt",
		"/web/%2e%2e/secret.txt",
		"/web/%2E%2E/secret.txt",
		"/web/.%2e/secret.txt",
		"/web/%2e%2e%2fsecret.txt",
		"/web/..%2fsecret.txt",
		"/web/sub%2f..%2f..%2fsecret.txt",
		"/web/..%5csecret.txt",
		"/web/%2fsecret.txt",
		"/web/sub%2fx.js", // a file inside, but not by that name
		"/web/sub%2Fx.js",
		"/web//secret.txt",
		"/web/./app.js",
		"/web/%00",
		"/web/leak",
		"/web/abs",
		"/web/up/secret.txt",
		"/web/sub/far",
		"/web/sub",
		"/web/sub/",
		"/web/app.js/",
		"/secret.txt",
	} {
		w := serve(h, "GET", target)
		if w.Code != 404 || w.Body.String() != `{"error":"Not found"}` || strings.Contains(w.Body.String(), "SECRET") {
			t.Errorf("%s: %d %q", target, w.Code, w.Body)
		}
	}
}

// Before `make web` has run, the answer says to run it, as a 404.
func TestNotBuilt(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "web")
	file := filepath.Join(t.TempDir(), "web")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	for dir, targets := range map[string][]string{
		missing: {"/web/", "/web/app.js", "/web/index.html"},
		file:    {"/web/"},
		empty:   {"/web/"},
	} {
		for _, target := range targets {
			w := serve(web.Handler(dir), "GET", target)
			if w.Code != 404 || w.Header().Get("Content-Type") != "application/json" ||
				w.Body.String() != "{\"error\":\"The web client is not built: run `make web`.\"}" {
				t.Errorf("%s in %s: %d %q", target, filepath.Base(dir), w.Code, w.Body)
			}
		}
	}
	// A build that appears later is served without a restart.
	h := web.Handler(missing)
	if err := os.MkdirAll(missing, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(missing, "index.html"), []byte("built"), 0o644); err != nil {
		t.Fatal(err)
	}
	if w := serve(h, "GET", "/web/"); w.Code != 200 || w.Body.String() != "built" {
		t.Errorf("after the build: %d %q", w.Code, w.Body)
	}
}
