package gateway_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/devkit/gateway"
)

// A Stack's Handler hands the web client's paths to Options.Web, and
// without it to the chat function, as before. Nothing here reaches the
// table or the bucket: their endpoints are closed ports.
func TestStackServesWeb(t *testing.T) {
	env := map[string]string{
		"STAGE": "local", "TABLE_NAME": "gateway-test", "JWT_SECRET": "t1:" + rand.Text() + rand.Text(),
		"DYNAMODB_ENDPOINT": "http://127.0.0.1:1", "S3_ENDPOINT": "http://127.0.0.1:1", "APPLE_JWKS_URL": "http://127.0.0.1:1/keys",
	}
	ctx := context.Background()
	cfg, err := config.Load(ctx, config.All, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	for _, web := range []http.Handler{webEcho, nil} {
		s, err := gateway.NewStack(ctx, cfg, slog.New(slog.DiscardHandler), gateway.Options{Web: web})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(s.Handler())
		status, body := call(t, srv, "GET", "/web/x", "", nil)
		if served := status == 200 && strings.HasPrefix(body, "web GET /web/x"); served != (web != nil) {
			t.Errorf("web handler %v: GET /web/x answered %d %q", web != nil, status, body)
		}
		srv.Close()
		s.Close()
	}
}
