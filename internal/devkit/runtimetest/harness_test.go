package runtimetest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ovrlrd/cloud/internal/devkit/devenv"
	"github.com/ovrlrd/cloud/internal/devkit/samtemplate"
)

var tools struct {
	once       sync.Once
	dir        string // removed by TestMain
	rie        string
	bootstraps map[string]string // by function, under dir
	err        error
}

// built installs the emulator and builds the three bootstraps once per test
// binary: the emulator with `go install` at its pinned version
// (EmulatorVersion), each bootstrap as the Makefile builds it but for this
// machine's architecture. It returns the emulator and the bootstraps by
// function.
func built(t *testing.T) (rie string, bootstraps map[string]string) {
	t.Helper()
	tools.once.Do(func() {
		ctx := context.Background()
		if tools.dir, tools.err = os.MkdirTemp("", "ovrlrd-runtimetest-"); tools.err != nil {
			return
		}
		if tools.rie, tools.err = InstallEmulator(ctx); tools.err != nil {
			return
		}
		tools.bootstraps, tools.err = BuildBootstraps(ctx, repoRoot(), tools.dir, runtime.GOARCH, Functions...)
	})
	if tools.err != nil {
		t.Fatal(tools.err)
	}
	return tools.rie, tools.bootstraps
}

func repoRoot() string {
	root, _ := devenv.ModuleRoot()
	return root
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ports, err := devenv.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return devenv.Loopback(ports[0])
}

// emulator is one function under the Runtime Interface Emulator.
type emulator struct {
	name   string
	addr   string // the invoke endpoint's host:port
	api    string // the Runtime API's host:port, which the function polls
	output *devenv.Buffer
	mu     sync.Mutex // the emulator takes one invoke at a time
	stop   func()
}

// startEmulator runs bootstrap under the emulator with exactly env (the
// emulator hands its own environment to the function, as Lambda hands the
// function's configuration).
func startEmulator(t *testing.T, name, bootstrap string, env map[string]string) *emulator {
	t.Helper()
	rie, _ := built(t)
	addr, api := freeAddr(t), freeAddr(t)
	out := &devenv.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := emulatorCmd(ctx, rie, bootstrap, addr, api, env, out)
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			_ = cmd.Wait()
			if t.Failed() {
				t.Logf("%s emulator output:\n%s", name, out.String())
			}
		})
	}
	t.Cleanup(stop)
	return &emulator{name: name, addr: addr, api: api, output: out, stop: stop}
}

// invoke sends one event and returns the raw response.
func (e *emulator) invoke(t *testing.T, event []byte) []byte {
	t.Helper()
	b, err := e.call(event)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (e *emulator) call(event []byte) ([]byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := invoke(ctx, e.addr, event)
	if err != nil {
		return b, fmt.Errorf("%s: %w", e.name, err)
	}
	return b, nil
}

// initDurations are the INIT phases the emulator reported.
func (e *emulator) initDurations() []string {
	var out []string
	for _, m := range csInitReport.FindAllStringSubmatch(e.output.String(), -1) {
		out = append(out, m[1]+" ms")
	}
	return out
}

// calls records the AWS calls one function made, as IAM requests.
type calls struct {
	mu   sync.Mutex
	reqs []samtemplate.Request
}

func (c *calls) add(r samtemplate.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reqs = append(c.reqs, r)
}

func (c *calls) all() []samtemplate.Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]samtemplate.Request(nil), c.reqs...)
}

// arns names the sample account's resources for the recorded requests.
type arns struct {
	region, account string
}

func (a arns) table(name string) string {
	return "arn:aws:dynamodb:" + a.region + ":" + a.account + ":table/" + name
}

// dynamoProxy forwards to DynamoDB Local and records each call as the IAM
// requests DynamoDB authorizes it with (a transaction item by item).
func dynamoProxy(t *testing.T, target string, a arns, rec *calls) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		for _, req := range samtemplate.DynamoDBRequests(r.Header.Get("X-Amz-Target"), body, a.table) {
			rec.add(req)
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// s3Backend is one S3 stand-in (gofakes3, in memory) holding bucket.
func s3Backend(t *testing.T, bucket string) http.Handler {
	t.Helper()
	mem := s3mem.New()
	if err := mem.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	return gofakes3.New(mem).Server()
}

// s3Proxy serves backend to one function (path style) and records each
// call as the IAM action S3 authorizes it with.
func s3Proxy(t *testing.T, backend http.Handler, rec *calls) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		res := "arn:aws:s3:::" + bucket
		req := samtemplate.Request{Resource: res, Context: map[string]string{}}
		switch {
		case key == "" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
			req.Action = "s3:ListBucket"
			req.Context["s3:prefix"] = r.URL.Query().Get("prefix")
		case key == "":
			req.Action = "s3:" + r.Method + "Bucket"
		case r.Method == http.MethodGet || r.Method == http.MethodHead:
			req.Action, req.Resource = "s3:GetObject", res+"/"+key
		case r.Method == http.MethodPut:
			req.Action, req.Resource = "s3:PutObject", res+"/"+key
		case r.Method == http.MethodDelete:
			req.Action, req.Resource = "s3:DeleteObject", res+"/"+key
		default:
			req.Action = "s3:" + r.Method
		}
		rec.add(req)
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// lambdaFake stands in for the Lambda service: it records each Invoke and,
// for InvocationType Event, answers 202 at once and runs the event in the
// emulator target names for the function, in the background, as Lambda's
// asynchronous invoke does; the event must answer what target names too.
type lambdaFake struct {
	*httptest.Server
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
	counts int
}

// done waits for the background invokes and returns their failures.
func (f *lambdaFake) done() (int, []error) {
	f.wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts, f.errs
}

func newLambdaFake(t *testing.T, a arns, rec *calls, target func(function string) (*emulator, string)) *lambdaFake {
	t.Helper()
	f := &lambdaFake{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, "/2015-03-31/functions/")
		name, ok2 := strings.CutSuffix(name, "/invocations")
		if r.Method != http.MethodPost || !ok || !ok2 {
			http.Error(w, `{"message":"not an Invoke"}`, http.StatusNotFound)
			return
		}
		rec.add(samtemplate.Request{Action: "lambda:InvokeFunction",
			Resource: "arn:aws:lambda:" + a.region + ":" + a.account + ":function:" + name})
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("X-Amz-Invocation-Type") != "Event" {
			http.Error(w, `{"message":"only asynchronous invokes are expected"}`, http.StatusBadRequest)
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			emu, want := target(name)
			out, err := emu.call(body)
			f.mu.Lock()
			defer f.mu.Unlock()
			f.counts++
			if err != nil {
				f.errs = append(f.errs, err)
			} else if string(out) != want {
				f.errs = append(f.errs, fmt.Errorf("the event answered %s, want %s", out, want))
			}
		}()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(func() { f.wg.Wait(); f.Close() })
	return f
}
