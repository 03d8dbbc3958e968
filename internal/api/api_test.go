package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/api"
	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/store"
)

func TestMain(m *testing.M) { storetest.Main(m) }

const key = "k+/=0123456789abcdefghijklmnopqrstuv" // '+', '/' and '=' as openssl makes them

func chat(t *testing.T, pinger api.Pinger) http.Handler {
	t.Helper()
	return api.NewChat(api.Deps{Log: slog.New(slog.DiscardHandler), APIKey: key, Store: pinger})
}

func do(h http.Handler, method, path string, header map[string]string) (*http.Response, string) {
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Result(), string(b)
}

// unreachable returns a store whose endpoint refuses connections.
func unreachable(t *testing.T) *store.Store {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return store.New(store.NewDB(storetest.AWSConfig(), "http://"+addr), store.Options{Table: "absent"})
}

func TestHealth(t *testing.T) {
	live := chat(t, storetest.New(t))
	cases := []struct {
		name   string
		h      http.Handler
		header map[string]string
		status int
		body   string
	}{
		{"no key", live, nil, 200, `{"status":"ok"}`},
		{"right key", live, map[string]string{"X-API-Key": key}, 200, `{"status":"ok"}`},
		{"wrong key", live, map[string]string{"X-API-Key": "nope"}, 401, `{"error":"Invalid API key"}`},
		{"empty key header", live, map[string]string{"X-API-Key": ""}, 401, `{"error":"Invalid API key"}`},
		{"app's content type", live, map[string]string{"Content-Type": "application/json"}, 200, `{"status":"ok"}`},
		{"table down", chat(t, unreachable(t)), nil, 503, `{"status":"unhealthy"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := do(c.h, "GET", "/health", c.header)
			if resp.StatusCode != c.status || body != c.body {
				t.Fatalf("got %d %s, want %d %s", resp.StatusCode, body, c.status, c.body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("content type %q", ct)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Fatalf("Cache-Control %q, want no-store", cc)
			}
		})
	}
}

func TestAPIKeyGuardsEveryOtherPath(t *testing.T) {
	h := chat(t, storetest.New(t))
	cases := []struct {
		name, method, path string
		header             map[string]string
		status             int
		body               string
	}{
		{"missing", "GET", "/chat", nil, 401, `{"error":"Missing API key"}`},
		{"wrong", "GET", "/chat", map[string]string{"X-API-Key": key + "x"}, 401, `{"error":"Invalid API key"}`},
		{"prefix of the key", "GET", "/chat", map[string]string{"X-API-Key": key[:10]}, 401, `{"error":"Invalid API key"}`},
		{"unknown path", "GET", "/nope", map[string]string{"X-API-Key": key}, 404, `{"error":"Not found"}`},
		{"unknown path without key", "GET", "/nope", nil, 401, `{"error":"Missing API key"}`},
		{"wrong method on health", "POST", "/health", map[string]string{"X-API-Key": key}, 404, `{"error":"Not found"}`},
		{"doubled slash", "GET", "//health", nil, 200, `{"status":"ok"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := do(h, c.method, c.path, c.header)
			if resp.StatusCode != c.status || body != c.body {
				t.Fatalf("got %d %s, want %d %s", resp.StatusCode, body, c.status, c.body)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Fatalf("Cache-Control %q, want no-store", cc)
			}
		})
	}
}

func TestOpenWhenNoKeyConfigured(t *testing.T) {
	// Only the local stage can run without a key; config refuses it elsewhere.
	h := api.NewChat(api.Deps{Log: slog.New(slog.DiscardHandler), Store: storetest.New(t)})
	resp, body := do(h, "GET", "/nope", nil)
	if resp.StatusCode != 404 || body != `{"error":"Not found"}` {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
}

type panicky struct{}

func (panicky) Ping(context.Context) error { panic("boom with a secret inside") }

func TestPanicBecomesJSON500(t *testing.T) {
	var logs strings.Builder
	h := api.NewChat(api.Deps{Log: slog.New(slog.NewJSONHandler(&logs, nil)), APIKey: key, Store: panicky{}})
	resp, body := do(h, "GET", "/health", nil)
	if resp.StatusCode != 500 || body != `{"error":"Internal server error"}` {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(logs.String(), "\n", 2)[0]), &line); err != nil || line["msg"] != "panic" {
		t.Fatalf("panic not logged as JSON: %q", logs.String())
	}
}
