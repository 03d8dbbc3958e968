// Package web serves the web client's built files (make web writes them to
// build/web) under /web/, as make dev's gateway offers them next to the API.
// Deployed, CloudFront serves the same files from S3 under the same prefix
// (template.yaml's WebBucket, which deploy.yml fills), with a response
// headers policy of SecurityHeaders' values and a function that answers
// /web/ with index.html, so that the page runs under the same rules in both
// places; internal/devkit/samtemplate's tests keep the two in step.
//
// It stays small and free of other dependencies than the standard library:
// a static file server confined to one folder, nothing more.
package web

import (
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
)

// prefix is the URL path under which Handler serves its folder.
const prefix = "/web/"

// JSON error bodies, as the API words its own.
const (
	notFound         = `{"error":"Not found"}`
	methodNotAllowed = `{"error":"Method not allowed"}`
	notBuilt         = "{\"error\":\"The web client is not built: run `make web`.\"}"
)

// contentTypes fixes the types of the files a build holds, whatever the
// system's MIME tables say; other names fall back to package mime.
var contentTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".mjs":         "text/javascript; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".json":        "application/json",
	".map":         "application/json",
	".webmanifest": "application/manifest+json",
	".png":         "image/png",
	".svg":         "image/svg+xml",
	".ico":         "image/vnd.microsoft.icon",
	".txt":         "text/plain; charset=utf-8",
	".woff2":       "font/woff2",
}

func contentType(name string) string {
	ext := strings.ToLower(path.Ext(name))
	if t, ok := contentTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream"
}

// Handler serves the files of dir under /web/: /web/app.js is dir/app.js
// and /web/ is dir/index.html, while /web is redirected to /web/. It answers GET and HEAD only, lists no
// folder, and opens files through an os.Root, so no path (.., encoded
// slashes, a symbolic link pointing out) reaches anything outside dir.
// Every answer, errors included, carries SecurityHeaders and
// Cache-Control: no-cache. dir is opened on each request, so a rebuild or
// a first `make web` while the server runs is picked up; until dir exists
// the answer is a 404 that says to build it.
func Handler(dir string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for k, v := range SecurityHeaders() {
			h.Set(k, v)
		}
		h.Set("Cache-Control", "no-cache")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, methodNotAllowed)
			return
		}
		if r.URL.Path == strings.TrimSuffix(prefix, "/") {
			// A typed address without its slash: the page's relative
			// links need it, as CloudFront's function says too.
			h.Set("Location", prefix)
			w.WriteHeader(http.StatusMovedPermanently)
			return
		}
		name, ok := fileName(r.URL)
		if !ok {
			writeError(w, http.StatusNotFound, notFound)
			return
		}
		root, err := os.OpenRoot(dir)
		if err != nil {
			writeError(w, http.StatusNotFound, notBuilt)
			return
		}
		defer root.Close()
		f, err := open(root, name)
		if err != nil {
			msg := notFound
			if name == "index.html" {
				msg = notBuilt
			}
			writeError(w, http.StatusNotFound, msg)
			return
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			writeError(w, http.StatusNotFound, notFound)
			return
		}
		h.Set("Content-Type", contentType(name))
		http.ServeContent(w, r, name, fi.ModTime(), f)
	})
}

// open opens a regular file of root. Folders are not served, and other
// kinds of files (a FIFO would block) are not even opened.
func open(root *os.Root, name string) (*os.File, error) {
	fi, err := root.Stat(name)
	if err == nil && !fi.Mode().IsRegular() {
		err = os.ErrNotExist
	}
	if err != nil {
		return nil, err
	}
	return root.Open(name)
}

// fileName is the name in the folder that u asks for: each segment of its
// path after the prefix, decoded, must be a plain file or folder name (not
// empty, ".", "..", nor holding a slash, a backslash or a NUL once
// decoded). The bare prefix stands for index.html.
func fileName(u *url.URL) (string, bool) {
	rest, ok := strings.CutPrefix(u.EscapedPath(), prefix)
	if !ok {
		return "", false
	}
	if rest == "" {
		return "index.html", true
	}
	segs := strings.Split(rest, "/")
	for i, s := range segs {
		s, err := url.PathUnescape(s)
		if err != nil || s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\\\x00") {
			return "", false
		}
		segs[i] = s
	}
	return strings.Join(segs, "/"), true
}

func writeError(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}
