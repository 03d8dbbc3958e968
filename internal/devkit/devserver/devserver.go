// Package devserver is make dev: the whole API on this machine, with
// DynamoDB Local in a persistent folder, the table, locally generated
// secrets, stand-ins for what the environment leaves unset, and every
// function behind one address routed as CloudFront and the HTTP API route in
// AWS, the web client's files and make dev's own web routes (web.go)
// included. cmd/dev runs it; the browser tests start it too. No deployed
// function links it.
package devserver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ovrlrd/cloud/internal/app/streamfn"
	"github.com/ovrlrd/cloud/internal/claude"
	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/devkit/devenv"
	"github.com/ovrlrd/cloud/internal/devkit/dynamolocal"
	"github.com/ovrlrd/cloud/internal/devkit/gateway"
	"github.com/ovrlrd/cloud/internal/devkit/gitserver"
	"github.com/ovrlrd/cloud/internal/procfs"
)

// Options are what Run reads and where it writes.
type Options struct {
	// Getenv reads the settings: os.Getenv, or a test's map.
	Getenv func(string) string
	// Out receives the banner and the functions' logs; nil discards them.
	Out io.Writer
	// Ready, if set, learns where the API listens once it serves.
	Ready func(Info)
}

// Info is what a running server tells Ready.
type Info struct {
	Addr   string // host:port the gateway listens on
	APIKey string // the X-API-Key it accepts
	// Git is the loopback git host of the demo project, and GitToken the
	// token it takes (nil and "" when KMS_KEY_ID names the developer's own
	// KMS): the browser tests add the project and check what a push sent.
	Git      *gitserver.Server
	GitToken string
}

// Run serves until ctx ends. Local data lives in DEV_DATA_DIR (default
// .local, which .gitignore covers). DynamoDB Local listens on
// DEV_DYNAMODB_PORT, the S3 stand-in on DEV_S3_HOST:DEV_S3_PORT (defaults:
// what events/env.json names for sam local; port 0 picks a free one). The
// web client's files are served from WEB_DIR (default build/web, relative
// to the working folder: make dev runs in the repository's root).
func Run(ctx context.Context, o Options) error {
	getenv, out, ready := o.Getenv, o.Out, o.Ready
	if getenv == nil {
		getenv = os.Getenv
	}
	if out == nil {
		out = io.Discard
	}
	if ready == nil {
		ready = func(Info) {}
	}
	dataDir, err := filepath.Abs(cmp.Or(getenv("DEV_DATA_DIR"), ".local"))
	if err != nil {
		return err
	}
	dynamoPort, err := strconv.Atoi(cmp.Or(getenv("DEV_DYNAMODB_PORT"), strconv.Itoa(devenv.DevDynamoDBPort)))
	if err != nil {
		return fmt.Errorf("DEV_DYNAMODB_PORT: %w", err)
	}
	// Turns' users pass through the data folder to their own folders, but
	// may not list it: DynamoDB Local's files and the secrets stay closed.
	if err := os.MkdirAll(dataDir, 0o711); err != nil {
		return err
	}
	if err := os.Chmod(dataDir, 0o711); err != nil {
		return err
	}
	// The generated secrets, and then all this sets up for the functions.
	local, created, err := loadOrCreateSecrets(filepath.Join(dataDir, "secrets.env"))
	if err != nil {
		return err
	}
	srv, err := dynamolocal.Start(ctx, dynamolocal.Options{DataDir: filepath.Join(dataDir, "dynamodb"), PerKey: true, Port: dynamoPort})
	if errors.Is(err, syscall.EADDRINUSE) {
		err = fmt.Errorf("%w (DEV_DYNAMODB_PORT sets another port; 0 picks a free one)", err)
	}
	if err != nil {
		return err
	}
	defer srv.Stop()
	// sam local's table (events/env.json points it here), in DynamoDB
	// Local's database for its key and region.
	ensure, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	samLocal := config.Config{Region: devenv.SAMLocalRegion, LocalAWSKey: config.NewSecret(devenv.SAMLocalKey), DynamoDBEndpoint: srv.Endpoint, TableName: devenv.DevTable}
	if err := dynamolocal.EnsureAppTable(ensure, samLocal); err != nil {
		return fmt.Errorf("sam local's table: %w", err)
	}

	// Anything the developer exports wins, but the roots the git host's
	// certificate is trusted by: SSL_CERT_FILE often names the system's
	// bundle already.
	var owned map[string]string
	env := func(name string) string {
		if v, ok := owned[name]; ok {
			return v
		}
		return cmp.Or(getenv(name), local[name])
	}
	s3Addr := net.JoinHostPort(cmp.Or(getenv("DEV_S3_HOST"), "127.0.0.1"), cmp.Or(getenv("DEV_S3_PORT"), strconv.Itoa(devenv.DevS3Port)))
	d, demoEnv, err := demoSettings(env, s3Addr)
	if err != nil {
		return err
	}
	defer d.close()
	maps.Copy(local, demoEnv)
	p, owned, err := demoProjects(env, dataDir)
	if err != nil {
		return err
	}
	defer p.close()
	maps.Copy(local, map[string]string{
		"STAGE":              "local",
		"TABLE_NAME":         devenv.DevTable,
		"DYNAMODB_ENDPOINT":  srv.Endpoint,
		"CLAUDE_WORK_ROOT":   filepath.Join(dataDir, "work"),
		"CLAUDE_CONFIG_ROOT": filepath.Join(dataDir, "claude"),
	})
	webDir, err := filepath.Abs(cmp.Or(getenv("WEB_DIR"), "build/web"))
	if err != nil {
		return err
	}
	routes := newWebRoutes(webDir, d.apple)
	a, err := gateway.NewLocal(ctx, config.All, env, out, gateway.Options{Stream: streamfn.Options{KMS: p.key}, Web: routes})
	if err != nil {
		return err
	}
	defer a.Close()
	routes.configure(a.Config.SignIn.ServicesIDs, a.Config.APIKey.Reveal())
	// On Linux a turn's orphans are re-parented here and reaped, and this
	// process hides its environment; macOS offers neither (both return nil
	// there), and runs find their processes by group and marker alone.
	if err := claude.BecomeSubreaper(); err != nil {
		return err
	}
	if err := procfs.HideSelf(); err != nil {
		return err
	}
	token, err := d.signIn(ctx, a.Accounts)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", a.Config.ListenAddr)
	if err != nil {
		return err
	}
	server := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- server.Serve(ln) }()
	addr := ln.Addr().String()
	banner(out, addr, dataDir, local["API_KEY"], created, srv.Port(), demoEnv["S3_ENDPOINT"])
	d.banner(out, addr, local["API_KEY"], token)
	p.banner(out, addr)
	routes.banner(out, addr)
	ready(Info{Addr: addr, APIKey: a.Config.APIKey.Reveal(), Git: p.git, GitToken: p.token})

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancelShutdown := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelShutdown()
	if err := server.Shutdown(shutdown); err != nil {
		a.Log.Warn("shutdown", "err", err)
	}
	return nil
}

// banner says where the API listens, and where sam local finds these servers.
func banner(out io.Writer, addr, dataDir, apiKey string, created bool, dynamoPort int, s3 string) {
	fmt.Fprintf(out, "\nOvrlrd API (local) listening on http://%s\n", addr)
	if created {
		fmt.Fprintf(out, "Generated local secrets in %s.\n", filepath.Join(dataDir, "secrets.env"))
	}
	fmt.Fprintf(out, "API key (X-API-Key): %s\n", apiKey)
	fmt.Fprintf(out, "Try: curl http://%s/health\n\n", addr)
	fmt.Fprintf(out, "sam local invoke --env-vars events/env.json: DynamoDB Local on port %d", dynamoPort)
	if s3 != "" {
		fmt.Fprintf(out, ", the S3 stand-in at %s", strings.TrimPrefix(s3, "http://"))
	}
	fmt.Fprintln(out, ".")
	if dynamoPort != devenv.DevDynamoDBPort || (s3 != "" && !strings.HasSuffix(s3, ":"+strconv.Itoa(devenv.DevS3Port))) {
		fmt.Fprintf(out, "events/env.json names ports %d and %d: give sam local a copy with these.\n", devenv.DevDynamoDBPort, devenv.DevS3Port)
	}
	fmt.Fprintln(out)
}
