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
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/devenv"
	"github.com/ovrlrd/cloud/internal/devkit/samtemplate"
	"github.com/ovrlrd/cloud/internal/devkit/ssmfake"
	"github.com/ovrlrd/cloud/internal/procfs"
)

// EmulatorVersion is the pinned Runtime Interface Emulator's, which this
// package's tests install too.
const EmulatorVersion = "v0.0.0-20261030222936-bef5c4ba774d"

// Functions are the three functions, as named under functions/.
var Functions = []string{"auth", "chat", "stream"}

// InstallEmulator returns the path of the pinned emulator, installed with
// `go install` (the Go module proxy the first time) into the cache this
// package's tests use.
func InstallEmulator(ctx context.Context) (string, error) {
	cache := filepath.Join(os.TempDir(), "ovrlrd-rie-"+EmulatorVersion)
	path := filepath.Join(cache, "aws-lambda-rie")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	install := exec.CommandContext(ctx, "go", "install", "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@"+EmulatorVersion)
	install.Env = append(os.Environ(), "GOBIN="+cache, "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	install.Dir = os.TempDir()
	if out, err := install.CombinedOutput(); err != nil {
		return "", fmt.Errorf("installing the emulator: %v\n%s", err, out)
	}
	return path, nil
}

// BuildBootstraps builds ./functions/<fn> of the module at root for each
// function as `make build` does (CGO off, GOOS=linux, -trimpath -tags
// lambda.norpc -ldflags "-s -w") for goarch, into dir/<goarch>/<fn>, with
// one `go build`. It returns the paths by function.
func BuildBootstraps(ctx context.Context, root, dir, goarch string, fns ...string) (map[string]string, error) {
	out := filepath.Join(dir, goarch)
	args := []string{"build", "-trimpath", "-tags", "lambda.norpc", "-ldflags", "-s -w", "-o", out + string(filepath.Separator)}
	paths := map[string]string{}
	for _, fn := range fns {
		args = append(args, "./functions/"+fn)
		paths[fn] = filepath.Join(out, fn)
	}
	build := exec.CommandContext(ctx, "go", args...)
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if b, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the bootstraps for %s: %v\n%s", goarch, err, b)
	}
	return paths, nil
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
//
// Ending ctx stops it as Lambda ends an execution environment. The
// bootstrap runs in a process group of its own, out of reach of a signal to
// the emulator alone, so the emulator gets SIGTERM: it then ends that group
// and reaps it before it exits itself.
func emulatorCmd(ctx context.Context, rie, bootstrap, addr, api string, env map[string]string, out io.Writer) *exec.Cmd {
	cmd := exec.CommandContext(ctx, rie, "--runtime-interface-emulator-address", addr, "--runtime-api-address", api, bootstrap)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	// Past the emulator's own deadline for the bootstrap (2 s).
	cmd.WaitDelay = 5 * time.Second
	cmd.Dir = filepath.Dir(bootstrap)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = out, out
	return cmd
}

// invoke sends event to the emulator at addr and returns the function's
// raw response. The emulator is another process, with nothing to signal its
// start but that it listens: a refused connection is tried again.
func invoke(ctx context.Context, addr string, event []byte) ([]byte, error) {
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost,
			"http://"+addr+"/2015-03-31/functions/function/invocations", bytes.NewReader(event))
		// A cold start's emulator is gone after its one invoke.
		req.Close = true
		resp, err := http.DefaultClient.Do(req)
		if errors.Is(err, syscall.ECONNREFUSED) {
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("the emulator did not listen: %w", err)
			case <-time.After(time.Millisecond):
				continue
			}
		}
		if err != nil {
			return nil, fmt.Errorf("invoke: %w", err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("invoke answered %d: %s", resp.StatusCode, body)
		}
		return body, err
	}
}

// ColdStartOptions configure a ColdStarter.
type ColdStartOptions struct {
	// DynamoDBEndpoint is DynamoDB Local's URL and Table a table in it: the
	// chat function's health check describes it.
	DynamoDBEndpoint, Table string
	// ClaudePath is the stream function's CLAUDE_PATH, an absolute path (a
	// cold start does not run it).
	ClaudePath string
	// JWTKeys ("kid:secret", as JWT_SECRET) and APIKey are the secrets in
	// the SSM stand-in, random when empty: a caller that signs its users
	// in elsewhere, over the same table, passes its own, so that their
	// session tokens pass here too.
	JWTKeys, APIKey string
	// S3Endpoint and Bucket keep the turns' sessions; a cold start makes no
	// S3 call, and without them each one fails.
	S3Endpoint, Bucket string
}

// ColdStarter starts the functions' bootstraps, each time in a new
// emulator process, and times the first invocation. It runs one cold start
// at a time.
type ColdStarter struct {
	dir        string
	rie        string
	bootstraps map[string]string
	envs       map[string]map[string]string
	event      []byte // GET /health
	ssm        *ssmfake.Server
}

// ColdStart is one cold start.
type ColdStart struct {
	// Init is the INIT phase as the emulator reports it ("INIT
	// REPORT(durationMs: …)"): from starting the bootstrap to its first
	// request for the next invocation.
	Init time.Duration
	// Status is the function's HTTP status: auth answers the GET /health
	// event 404 (it has no such route), chat 200 (the table answered),
	// stream 404 through its streamed Function URL response.
	Status int
}

// NewColdStarter installs the emulator, builds the three bootstraps for
// this machine (Linux: the emulator runs Linux bootstraps) and starts the
// SSM stand-in (the secrets under /ovrlrd/dev). Close removes it all.
func NewColdStarter(ctx context.Context, o ColdStartOptions) (c *ColdStarter, err error) {
	root, err := devenv.ModuleRoot()
	if err != nil {
		return nil, err
	}
	c = &ColdStarter{envs: map[string]map[string]string{}}
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
	if err == nil {
		c.rie, err = InstallEmulator(ctx)
	}
	if err == nil {
		c.bootstraps, err = BuildBootstraps(ctx, root, c.dir, runtime.GOARCH, Functions...)
	}
	if err != nil {
		return c, err
	}

	// GET /health, one event for the three: a Function URL's payload has
	// the HTTP API's format.
	if c.event, err = os.ReadFile(filepath.Join(root, "events", "chat-health.json")); err != nil {
		return c, err
	}
	// No origin secret: the event comes from no CloudFront.
	const prefix = "/ovrlrd/dev"
	c.ssm = ssmfake.New(map[string]string{
		prefix + "/jwt-keys":          cmp.Or(o.JWTKeys, "k1:"+rand.Text()+rand.Text()),
		prefix + "/api-key":           cmp.Or(o.APIKey, rand.Text()),
		prefix + "/anthropic-api-key": "sk-ant-not-a-real-key",
	})
	// Lambda and Apple's keys, which a cold start does not call: a port
	// nothing listens on, so that a call fails here rather than leave the
	// machine.
	ports, err := devenv.FreePorts(1)
	if err != nil {
		return c, err
	}
	nowhere := "http://" + devenv.Loopback(ports[0])

	tpl, err := samtemplate.Load(filepath.Join(root, "template.yaml"))
	if err != nil {
		return c, err
	}
	params := map[string]string{"Stage": "dev", "SsmPrefix": prefix, "AllowOpenSignup": "true", "ClaudeProvider": "anthropic"}
	// The other resources keep their sample names (so does the bucket,
	// when none is given): a cold start calls none of them.
	tenv := tpl.SampleEnv(params, map[string]string{"Table": o.Table, "SessionsBucket": o.Bucket})
	image, err := samtemplate.DockerfileEnv(filepath.Join(root, "Dockerfile"))
	if err != nil {
		return c, err
	}
	for fn, logical := range map[string]string{"auth": "AuthFunction", "chat": "ChatFunction", "stream": "StreamFunction"} {
		env, err := lambdaEnv(tpl, tenv, logical, filepath.Join(c.dir, "aws"))
		if err != nil {
			return c, err
		}
		if fn == "stream" {
			maps.Copy(env, image)
			env["CLAUDE_PATH"] = o.ClaudePath
			// Lambda's /tmp (the image's HOME), which ColdStart empties.
			env["HOME"] = c.dir
			env["CLAUDE_WORK_ROOT"] = filepath.Join(c.dir, "work")
			env["CLAUDE_CONFIG_ROOT"] = filepath.Join(c.dir, "claude")
		}
		maps.Copy(env, map[string]string{
			"DYNAMODB_ENDPOINT":       o.DynamoDBEndpoint,
			"S3_ENDPOINT":             cmp.Or(o.S3Endpoint, nowhere),
			"AWS_ENDPOINT_URL_SSM":    c.ssm.URL,
			"AWS_ENDPOINT_URL_LAMBDA": nowhere,
			"APPLE_JWKS_URL":          nowhere,
		})
		c.envs[fn] = env
	}
	return c, nil
}

// Close stops the SSM stand-in and removes the builds.
func (c *ColdStarter) Close() {
	if c.ssm != nil {
		c.ssm.Close()
	}
	if c.dir != "" {
		_ = os.RemoveAll(c.dir)
	}
}

// csInitReport is the emulator's INIT report (its REPORT line's "Init
// Duration" times only the emulator's own hand-off).
var csInitReport = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)

// Instance is one function's bootstrap under an emulator process of its
// own: an execution environment, warm once started.
type Instance struct {
	Pid     int // the bootstrap's
	cmd     *exec.Cmd
	addr    string
	out     devenv.Buffer
	stop    context.CancelFunc
	cleanup func()
}

// Start starts fn's bootstrap in a new emulator process (a new execution
// environment: for stream an empty /tmp) and sends it its GET /health
// event, on which the emulator starts the bootstrap. It returns the
// function's HTTP status. The environment stays warm until Stop, at the
// latest until ctx ends.
func (c *ColdStarter) Start(ctx context.Context, fn string) (_ *Instance, status int, err error) {
	env := c.envs[fn]
	ports, err := devenv.FreePorts(2)
	if err != nil {
		return nil, 0, err
	}
	i := &Instance{addr: devenv.Loopback(ports[0]), cleanup: func() {}}
	if fn == "stream" {
		// The next execution environment's /tmp is empty too, at the same
		// paths.
		i.cleanup = func() {
			_ = os.RemoveAll(env["CLAUDE_WORK_ROOT"])
			_ = os.RemoveAll(env["CLAUDE_CONFIG_ROOT"])
		}
	}
	ctx, i.stop = context.WithCancel(ctx)
	i.cmd = emulatorCmd(ctx, c.rie, c.bootstraps[fn], i.addr, devenv.Loopback(ports[1]), env, &i.out)
	var body []byte
	if err = i.cmd.Start(); err == nil {
		body, err = i.Invoke(ctx, c.event)
	}
	// The function's HTTP status: for stream, from the JSON prelude that
	// heads the streamed response.
	var answer struct {
		StatusCode int `json:"statusCode"`
	}
	if err == nil && (json.NewDecoder(bytes.NewReader(body)).Decode(&answer) != nil || answer.StatusCode == 0) {
		err = fmt.Errorf("not an HTTP response: %.500q", body)
	}
	if i.Pid = child(i.cmd, c.bootstraps[fn]); err == nil && i.Pid == 0 {
		err = errors.New("no bootstrap process below the emulator")
	}
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w%s", fn, err, tail(i.Stop()))
	}
	return i, answer.StatusCode, nil
}

// child is the process below the started cmd that runs the executable at
// path, 0 if none does.
func child(cmd *exec.Cmd, path string) int {
	var buf []byte
	for _, pid := range procfs.Pids() {
		exe, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
		if st, ok := procfs.ReadStat(pid, &buf); ok && cmd.Process != nil && st.PPID == cmd.Process.Pid && exe == path {
			return pid
		}
	}
	return 0
}

// tail is the end of an emulator's output, for an error.
func tail(output string) string { return "\n" + output[max(0, len(output)-2000):] }

// Invoke sends event and returns the function's raw response: for a
// streamed one, its JSON prelude, eight NUL bytes and the body.
func (i *Instance) Invoke(ctx context.Context, event []byte) ([]byte, error) {
	return invoke(ctx, i.addr, event)
}

// Stop ends the emulator and its bootstrap, and returns what both printed.
func (i *Instance) Stop() string {
	i.stop()
	_ = i.cmd.Wait()
	i.cleanup()
	return i.out.String()
}

// ColdStart starts fn's bootstrap in a new execution environment, sends it
// its GET /health event, and stops it.
func (c *ColdStarter) ColdStart(ctx context.Context, fn string) (cs ColdStart, err error) {
	run, stop := context.WithTimeout(ctx, 30*time.Second)
	defer stop()
	ssmCalls := c.ssm.Calls()
	i, status, err := c.Start(run, fn)
	if err != nil {
		return cs, err
	}
	cs.Status = status
	// Read only once the emulator has been waited for: nothing writes then,
	// and the INIT report, logged before the invoke reached the function,
	// has been copied whole.
	output := i.Stop()
	// A cold start reads the secrets (once): this one did start afresh.
	if n := c.ssm.Calls() - ssmCalls; n != 1 {
		err = fmt.Errorf("%d GetParameters calls during the cold start, want 1", n)
	}
	report := csInitReport.FindStringSubmatch(output)
	if err == nil && report == nil {
		err = errors.New("the emulator reported no INIT phase")
	}
	if err == nil {
		cs.Init, err = time.ParseDuration(report[1] + "ms")
	}
	if err != nil {
		return cs, fmt.Errorf("%s: %w%s", fn, err, tail(output))
	}
	return cs, nil
}
