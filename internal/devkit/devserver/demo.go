package devserver

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ovrlrd/cloud/internal/audit"
	"github.com/ovrlrd/cloud/internal/auth"
	"github.com/ovrlrd/cloud/internal/devkit/anthropicfake"
	"github.com/ovrlrd/cloud/internal/devkit/applefake"
	"github.com/ovrlrd/cloud/internal/devkit/devenv"
)

// demo is the offline demo for newcomers: with no Claude credential the real
// CLI answers through a local stand-in of the Anthropic API, and with no
// Apple keys configured sign-in goes through a local stand-in of Apple, so a
// full streamed turn with a tool call can be watched with curl.
type demo struct {
	anthropic *anthropicfake.Server
	apple     *applefake.Server
	closers   []func()
}

// demoSettings starts the stand-ins the environment leaves room for, the
// S3 one listening at s3Addr, and returns the settings that point the
// service at them.
func demoSettings(getenv func(string) string, s3Addr string) (*demo, map[string]string, error) {
	d := &demo{}
	env := map[string]string{}
	if getenv("S3_ENDPOINT") == "" {
		// Transcripts and workspaces go to an in-memory S3, which only the
		// server's generated key opens (and sam local's, its own bucket
		// only): turns' tools run on this machine too.
		ln, err := net.Listen("tcp", s3Addr)
		if err != nil {
			return nil, nil, fmt.Errorf("S3 stand-in: %w (DEV_S3_HOST and DEV_S3_PORT say where; port 0 picks a free one)", err)
		}
		mem := s3mem.New()
		// sam local's bucket (events/env.json points it here); a new
		// backend holds no bucket it could clash with.
		_ = mem.CreateBucket(devenv.SAMLocalBucket)
		s3 := &httptest.Server{Listener: ln, Config: &http.Server{Handler: s3Access(getenv("LOCAL_AWS_KEY"), gofakes3.New(mem).Server())}}
		s3.Start()
		d.closers = append(d.closers, s3.Close)
		env["S3_ENDPOINT"] = s3.URL
	}
	if getenv("ANTHROPIC_API_KEY") == "" && getenv("CLAUDE_CODE_OAUTH_TOKEN") == "" && getenv("CLAUDE_PROVIDER") == "" {
		d.anthropic = anthropicfake.New(anthropicfake.Demo())
		d.closers = append(d.closers, d.anthropic.Close)
		env["ANTHROPIC_BASE_URL"] = d.anthropic.URL
		env["ANTHROPIC_API_KEY"] = "offline-demo"
	}
	if getenv("APPLE_JWKS_URL") == "" {
		d.apple = applefake.New()
		d.closers = append(d.closers, d.apple.Close)
		env["APPLE_JWKS_URL"] = d.apple.URL
		env["ALLOW_OPEN_SIGNUP"] = "true"
		// The web client's local sign-in (web.go) mints its tokens for
		// this audience, unless the developer names another.
		if getenv("APPLE_SERVICES_ID") == "" {
			env["APPLE_SERVICES_ID"] = LocalServicesID
		}
	}
	// The CLI that `make deps` installs, unless one is configured.
	if cli, err := filepath.Abs("node_modules/.bin/claude"); err == nil && getenv("CLAUDE_PATH") == "" {
		if _, err := os.Stat(cli); err == nil {
			env["CLAUDE_PATH"] = cli
		}
	}
	return d, env, nil
}

func (d *demo) close() {
	for _, c := range d.closers {
		c()
	}
}

// signIn signs a demo user in through the real sign-in path and returns the
// session token, when Apple is the local stand-in.
func (d *demo) signIn(ctx context.Context, accounts *auth.Service) (string, error) {
	if d.apple == nil {
		return "", nil
	}
	idt := d.apple.Mint(applefake.DemoUser)
	g, err := accounts.SignIn(ctx, auth.SignInRequest{IdentityToken: idt}, audit.Client{IP: "127.0.0.1", UserAgent: "make dev"})
	if err != nil {
		return "", err
	}
	return g.SessionToken, nil
}

func (d *demo) banner(out io.Writer, addr, apiKey, token string) {
	if d.anthropic != nil {
		fmt.Fprintln(out, "OFFLINE DEMO: no Claude credential is set, so the real Claude Code CLI answers")
		fmt.Fprintln(out, "through a local stand-in of the Anthropic API (scripted answers, not Claude).")
		fmt.Fprintln(out, "Set ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN to talk to Claude.")
	}
	if token == "" {
		return
	}
	fmt.Fprintln(out, "OFFLINE DEMO: sign-in uses a local stand-in of Apple; a demo user is signed in:")
	fmt.Fprintf(out, "  export KEY='%s' TOKEN='%s'\n", apiKey, token)
	fmt.Fprintf(out, "  curl -N -X POST http://%s/chat/stream -H \"X-API-Key: $KEY\" -H \"Authorization: Bearer $TOKEN\" \\\n", addr)
	fmt.Fprintln(out, "       -H 'Content-Type: application/json' -d '{\"message\":\"What is in this folder?\"}'")
	fmt.Fprintln(out)
}

// s3Access opens the S3 stand-in as the functions' roles open their
// bucket: to make dev's generated key (secret, so whatever signs with it is
// this server), everywhere; to sam local's key (public, committed in
// events/env.json), in sam local's bucket only, so a tool on this machine
// that knows it reaches what sam local invocations wrote and nothing of
// make dev's; and to a presigned upload's PUT whose signature holds.
func s3Access(own string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// SigV4 names the key in the Authorization header.
		_, credential, _ := strings.Cut(r.Header.Get("Authorization"), "Credential=")
		key, _, _ := strings.Cut(credential, "/")
		// gofakes3 takes the bucket from the path's first segment.
		bucket, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		switch {
		case own != "" && key == own:
		case key == devenv.SAMLocalKey && bucket == devenv.SAMLocalBucket:
		case own != "" && credential == "" && presignedUpload(r, own, time.Now()):
		default:
			http.Error(w, "AccessDenied", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}
