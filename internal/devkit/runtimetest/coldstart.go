// Package runtimetest runs the functions' real bootstraps under the AWS
// Lambda Runtime Interface Emulator, with the environment template.yaml
// gives them, and checks what they answer and every AWS call they make
// against the roles the template grants. Its tests need DynamoDB Local
// (`make test` starts one) and the Go module proxy the first time, to build
// the pinned emulator.
package runtimetest

// Cold starts outside a test, for `make bench`: the same pinned emulator,
// the same bootstrap builds, the same environment (template.yaml's, what
// Lambda sets, STAGE=dev, secrets from the SSM stand-in) as the tests in
// this package, with nothing of testing.T. Its names carry a "cs" prefix
// where the tests' helpers would clash.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ovrlrd/cloud/internal/devkit/applefake"
	"github.com/ovrlrd/cloud/internal/devkit/devenv"
	"github.com/ovrlrd/cloud/internal/devkit/samtemplate"
	"github.com/ovrlrd/cloud/internal/devkit/ssmfake"
	"github.com/ovrlrd/cloud/internal/procfs"
)

// The pinned Runtime Interface Emulator, which this package's tests install
// too.
const (
	EmulatorPackage = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"
	EmulatorVersion = "v0.0.0-20261030222936-bef5c4ba774d"
)

// Functions are the three functions, as named under functions/.
var Functions = []string{"auth", "chat", "stream"}

// logicalIDs are their resources in template.yaml.
var logicalIDs = map[string]string{"auth": "AuthFunction", "chat": "ChatFunction", "stream": "StreamFunction"}

// InstallEmulator returns the path of the pinned emulator, installed with
// `go install` (the Go module proxy the first time) into the cache this
// package's tests use.
func InstallEmulator(ctx context.Context) (string, error) {
	cache := filepath.Join(os.TempDir(), "ovrlrd-rie-"+EmulatorVersion)
	path := filepath.Join(cache, "aws-lambda-rie")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	install := exec.CommandContext(ctx, "go", "install", EmulatorPackage+"@"+EmulatorVersion)
	install.Env = append(os.Environ(), "GOBIN="+cache, "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	install.Dir = os.TempDir()
	if out, err := install.CombinedOutput(); err != nil {
		return "", fmt.Errorf("installing the emulator: %v\n%s", err, out)
	}
	return path, nil
}

// BuildBootstraps builds ./functions/<fn> of the module at root for each
// function as `make build` does (CGO off, GOOS=linux, -trimpath -tags
// lambda.norpc -ldflags "-s -w") for goarch, into dir/<fn>/bootstrap, with
// one `go build`. It returns the paths by function.
func BuildBootstraps(ctx context.Context, root, dir, goarch string, fns ...string) (map[string]string, error) {
	out := filepath.Join(dir, "bin-"+goarch)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	args := []string{"build", "-trimpath", "-tags", "lambda.norpc", "-ldflags", "-s -w", "-o", out + string(filepath.Separator)}
	for _, fn := range fns {
		args = append(args, "./functions/"+fn)
	}
	build := exec.CommandContext(ctx, "go", args...)
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if b, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the bootstraps for %s: %v\n%s", goarch, err, b)
	}
	paths := map[string]string{}
	for _, fn := range fns {
		p := filepath.Join(dir, goarch, fn, "bootstrap")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.Rename(filepath.Join(out, fn), p); err != nil {
			return nil, err
		}
		paths[fn] = p
	}
	_ = os.Remove(out)
	return paths, nil
}

// ColdStartOptions configure a ColdStarter.
type ColdStartOptions struct {
	// Root is the module's directory; empty finds it (devenv.ModuleRoot).
	Root string
	// DynamoDBEndpoint is DynamoDB Local's URL and Table a table in it: the
	// chat function's health check describes it.
	DynamoDBEndpoint, Table string
	// ClaudePath is the stream function's CLAUDE_PATH, an absolute path (a
	// cold start does not run it).
	ClaudePath string
}

// ColdStarter starts the functions' bootstraps, each time in a new
// emulator process, and times the first invocation. It runs one cold start
// at a time.
type ColdStarter struct {
	dir        string
	rie        string
	bootstraps map[string]string
	envs       map[string]map[string]string
	events     map[string][]byte
	ssm        *ssmfake.Server
	closers    []func()
}

// ColdStart is one cold start.
type ColdStart struct {
	// Init is the INIT phase as the emulator reports it ("INIT
	// REPORT(durationMs: …)"): from starting the bootstrap to its first
	// request for the next invocation.
	Init time.Duration
	// FirstResponse is the wall time from starting the emulator process to
	// the whole first response read.
	FirstResponse time.Duration
	// Status is the function's HTTP status: auth answers the GET /health
	// event 404 (it has no such route), chat 200 (the table answered),
	// stream 404 through its streamed Function URL response.
	Status int
}

// NewColdStarter installs the emulator, builds the three bootstraps for
// this machine's architecture and starts the stand-ins: SSM (the secrets
// under /ovrlrd/dev), Apple's keys, and an endpoint for S3 and Lambda that
// a cold start does not call. Close removes it all.
func NewColdStarter(ctx context.Context, o ColdStartOptions) (c *ColdStarter, err error) {
	if runtime.GOOS != "linux" {
		return nil, fmt.Errorf("the emulator runs Linux bootstraps; this is %s", runtime.GOOS)
	}
	if o.Root == "" {
		if o.Root, err = devenv.ModuleRoot(); err != nil {
			return nil, err
		}
	}
	if o.DynamoDBEndpoint == "" || o.Table == "" || !filepath.IsAbs(o.ClaudePath) {
		return nil, errors.New("cold starts need DynamoDB Local's endpoint, a table and an absolute CLAUDE_PATH")
	}
	c = &ColdStarter{envs: map[string]map[string]string{}, events: map[string][]byte{}}
	defer func() {
		if err != nil {
			c.Close()
			c = nil
		}
	}()
	if c.dir, err = os.MkdirTemp("", "ovrlrd-coldstart-"); err == nil {
		// The stream function's turns run as users of their own when this
		// runs as root: they pass through here to their folders.
		err = os.Chmod(c.dir, 0o711)
	}
	if err != nil {
		return c, err
	}
	if c.rie, err = InstallEmulator(ctx); err != nil {
		return c, err
	}
	if c.bootstraps, err = BuildBootstraps(ctx, o.Root, c.dir, runtime.GOARCH, Functions...); err != nil {
		return c, err
	}

	// The events: GET /health through the HTTP API (auth, chat) and through
	// the Function URL (stream), from the sample events.
	health, err := os.ReadFile(filepath.Join(o.Root, "events", "chat-health.json"))
	if err != nil {
		return c, err
	}
	c.events["auth"], c.events["chat"] = health, health
	raw, err := os.ReadFile(filepath.Join(o.Root, "events", "stream-new.json"))
	if err != nil {
		return c, err
	}
	var url events.LambdaFunctionURLRequest
	if err := json.Unmarshal(raw, &url); err != nil {
		return c, fmt.Errorf("stream-new.json: %w", err)
	}
	url.RawPath, url.RequestContext.HTTP.Path, url.RequestContext.HTTP.Method = "/health", "/health", http.MethodGet
	url.Body, url.IsBase64Encoded = "", false
	delete(url.Headers, "authorization")
	delete(url.Headers, "content-type")
	if c.events["stream"], err = json.Marshal(url); err != nil {
		return c, err
	}

	const prefix = "/ovrlrd/dev"
	c.ssm = ssmfake.New(map[string]string{
		prefix + "/jwt-keys":          "k1:" + rand.Text() + rand.Text(),
		prefix + "/api-key":           url.Headers["x-api-key"],
		prefix + "/anthropic-api-key": "sk-ant-not-a-real-key",
		prefix + "/origin-secret":     url.Headers["x-origin-secret"],
	})
	apple := applefake.New()
	unused := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"message":"not part of a cold start"}`, http.StatusServiceUnavailable)
	}))
	c.closers = append(c.closers, c.ssm.Close, apple.Close, unused.Close)

	tpl, err := samtemplate.Load(filepath.Join(o.Root, "template.yaml"))
	if err != nil {
		return c, err
	}
	names := map[string]string{
		"Table": o.Table, "SessionsBucket": "ovrlrd-dev-sessions-coldstart",
		"AuthFunction": "ovrlrd-dev-auth", "ChatFunction": "ovrlrd-dev-chat", "StreamFunction": "ovrlrd-dev-stream",
	}
	params := map[string]string{"Stage": "dev", "SsmPrefix": prefix, "AllowOpenSignup": "true", "ClaudeProvider": "anthropic"}
	tenv := tpl.SampleEnv(params, names)
	for _, fn := range Functions {
		env, err := lambdaEnv(tpl, tenv, logicalIDs[fn], filepath.Join(c.dir, "aws"))
		if err != nil {
			return c, err
		}
		maps.Copy(env, map[string]string{
			"DYNAMODB_ENDPOINT":       o.DynamoDBEndpoint,
			"S3_ENDPOINT":             unused.URL,
			"AWS_ENDPOINT_URL_SSM":    c.ssm.URL,
			"AWS_ENDPOINT_URL_LAMBDA": unused.URL,
			"APPLE_JWKS_URL":          apple.URL,
		})
		if fn == "stream" {
			image, err := samtemplate.DockerfileEnv(filepath.Join(o.Root, "Dockerfile"))
			if err != nil {
				return c, err
			}
			maps.Copy(env, image)
			env["CLAUDE_PATH"] = o.ClaudePath
		}
		c.envs[fn] = env
	}
	return c, nil
}

// Close stops the stand-ins and removes the builds.
func (c *ColdStarter) Close() {
	for _, f := range c.closers {
		f()
	}
	if c.dir != "" {
		_ = os.RemoveAll(c.dir)
	}
}

// csInitReport is the emulator's INIT report (its REPORT line's "Init
// Duration" times only the emulator's own hand-off).
var csInitReport = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)

// ColdStart starts a new emulator process with fn's bootstrap (a new
// execution environment: for stream an empty /tmp of its own), sends it
// its GET /health event, and stops it.
func (c *ColdStarter) ColdStart(ctx context.Context, fn string) (cs ColdStart, err error) {
	env, ok := c.envs[fn]
	if !ok {
		return cs, fmt.Errorf("unknown function %q", fn)
	}
	env = maps.Clone(env)
	if fn == "stream" {
		root, err := os.MkdirTemp(c.dir, "tmp-")
		if err == nil {
			err = os.Chmod(root, 0o711)
		}
		if err != nil {
			return cs, err
		}
		defer os.RemoveAll(root)
		env["CLAUDE_WORK_ROOT"] = filepath.Join(root, "work")
		env["CLAUDE_CONFIG_ROOT"] = filepath.Join(root, "claude")
		env["HOME"] = root
	}
	ports, err := devenv.FreePorts(2)
	if err != nil {
		return cs, err
	}
	addr, api := devenv.Loopback(ports[0]), devenv.Loopback(ports[1])
	// Read only once csStop has waited for the emulator: nothing writes then.
	var out bytes.Buffer
	cmd := emulatorCmd(c.rie, c.bootstraps[fn], addr, api, env, &out)
	ssmCalls := c.ssm.Calls()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return cs, err
	}
	body, err := csInvoke(ctx, addr, c.events[fn])
	cs.FirstResponse = time.Since(start)
	// Stopped before its output is read: the INIT report, logged before the
	// invoke reached the function, has then been copied whole.
	csStop(cmd)
	if err == nil {
		cs.Status, err = csStatus(fn, body)
	}
	// A cold start reads the secrets (once): this one did start afresh.
	if n := c.ssm.Calls() - ssmCalls; err == nil && n != 1 {
		err = fmt.Errorf("%d GetParameters calls during the cold start, want 1", n)
	}
	if err == nil {
		cs.Init, err = csInit(out.String())
	}
	if err != nil {
		return cs, fmt.Errorf("%s: %w\n%s", fn, err, csTail(out.String(), 2000))
	}
	return cs, nil
}

// csInit reads the INIT phase's duration from the emulator's output.
func csInit(out string) (time.Duration, error) {
	m := csInitReport.FindStringSubmatch(out)
	if m == nil {
		return 0, errors.New("the emulator reported no INIT phase")
	}
	ms, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("INIT report %q: %w", m[0], err)
	}
	return time.Duration(ms * float64(time.Millisecond)), nil
}

// csInvoke sends event to the emulator at addr as soon as it listens: it
// starts the bootstrap on the first invoke.
func csInvoke(ctx context.Context, addr string, event []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := listening(ctx, addr); err != nil {
		return nil, err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost,
		"http://"+addr+"/2015-03-31/functions/function/invocations", bytes.NewReader(event))
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("invoke: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("answered %d: %s", resp.StatusCode, body)
	}
	if err != nil {
		return nil, fmt.Errorf("invoke: %w", err)
	}
	return body, nil
}

// listening returns once addr accepts a connection, or ctx ends: the
// emulator is another process, with nothing to signal its start but that.
func listening(ctx context.Context, addr string) error {
	for {
		conn, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			return conn.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the emulator did not listen: %w", err)
		case <-time.After(time.Millisecond):
		}
	}
}

// csStatus reads the function's HTTP status from its response: an HTTP
// API response, or for stream the JSON prelude of the streamed response
// (before eight NUL bytes).
func csStatus(fn string, body []byte) (int, error) {
	head := body
	if fn == "stream" {
		i := bytes.Index(body, make([]byte, 8))
		if i < 0 {
			return 0, fmt.Errorf("no prelude in the streamed response %q", csTail(string(body), 500))
		}
		head = body[:i]
	}
	var r struct {
		StatusCode int `json:"statusCode"`
	}
	if err := json.Unmarshal(head, &r); err != nil || r.StatusCode == 0 {
		return 0, fmt.Errorf("not an HTTP response: %q", csTail(string(body), 500))
	}
	return r.StatusCode, nil
}

// csStop ends the emulator and the bootstrap it started. The emulator
// starts the bootstrap in a process group of its own, so a signal to the
// emulator alone would leave it running: the bootstrap goes first (and the
// emulator reaps it), then the emulator.
func csStop(cmd *exec.Cmd) {
	kids := csChildren(cmd.Process.Pid)
	for _, pid := range kids {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if len(csChildren(cmd.Process.Pid)) == 0 {
			break
		}
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	// A bootstrap the emulator had not reaped was re-parented as the
	// emulator exited: to this process if it is a child subreaper, which
	// must reap it then.
	self := os.Getpid()
	for _, pid := range kids {
		if s, ok := procfs.ReadStat(pid, new([]byte)); ok && s.PPID == self {
			var ws syscall.WaitStatus
			_, _ = syscall.Wait4(pid, &ws, 0, nil)
		}
	}
}

// csChildren lists the live children of pid (Linux /proc).
func csChildren(pid int) []int {
	var kids []int
	var buf []byte
	for _, p := range procfs.Pids() {
		if s, ok := procfs.ReadStat(p, &buf); ok && s.PPID == pid && s.State != 'Z' {
			kids = append(kids, p)
		}
	}
	return kids
}

// lambdaEnv is the environment of a function deployed in e: what the
// template sets (Globals merged with its own, intrinsics resolved), what
// Lambda sets, and nothing from this machine's AWS settings (awsFiles is a
// folder without any).
func lambdaEnv(tpl samtemplate.Template, e samtemplate.Env, logical, awsFiles string) (map[string]string, error) {
	vars, err := tpl.FunctionVariables(logical)
	if err != nil {
		return nil, fmt.Errorf("template.yaml: %w", err)
	}
	env := map[string]string{}
	for k, v := range vars {
		if env[k], err = tpl.EvalString(v, e); err != nil {
			return nil, fmt.Errorf("%s %s: %w", logical, k, err)
		}
	}
	props, _ := tpl.Resources()[logical]["Properties"].(map[string]any)
	maps.Copy(env, map[string]string{
		"AWS_REGION": samtemplate.SampleRegion, "AWS_DEFAULT_REGION": samtemplate.SampleRegion,
		"AWS_LAMBDA_FUNCTION_NAME":        e.Refs[logical],
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": fmt.Sprint(props["MemorySize"]),
		"AWS_LAMBDA_FUNCTION_TIMEOUT":     fmt.Sprint(props["Timeout"]),
		"AWS_ACCESS_KEY_ID":               "ASIAEXAMPLEEXAMPLE00", "AWS_SECRET_ACCESS_KEY": "example-secret",
		"AWS_SESSION_TOKEN":           "example-session-token",
		"PATH":                        "/usr/local/bin:/usr/bin:/bin",
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_CONFIG_FILE":             filepath.Join(awsFiles, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(awsFiles, "credentials"),
	})
	return env, nil
}

// emulatorCmd is the emulator rie running bootstrap with exactly env (the
// emulator hands its own environment to the function), its Runtime API on
// api and its invoke endpoint on addr; out collects what both print.
func emulatorCmd(rie, bootstrap, addr, api string, env map[string]string, out io.Writer) *exec.Cmd {
	cmd := exec.Command(rie, "--runtime-interface-emulator-address", addr, "--runtime-api-address", api, bootstrap)
	cmd.Dir = filepath.Dir(bootstrap)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	sort.Strings(cmd.Env)
	cmd.Stdout, cmd.Stderr = out, out
	return cmd
}

func csTail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
