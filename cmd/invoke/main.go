// Command invoke runs one Lambda event through one function's real handler,
// in this process: `sam local invoke` without Docker.
//
//	make invoke FN=chat EVENT=events/chat-health.json
//
// It builds the function as its main.go does (config.Load, app.New) in the
// local stage, with DynamoDB Local from DYNAMODB_ENDPOINT (`make invoke`
// starts one), the table created if missing, an in-memory S3 stand-in
// unless S3_ENDPOINT is set, and a random JWT key unless JWT_SECRET is set.
// Anything exported in the environment wins. It prints the function's
// response: the JSON Lambda would get, or for a streamed response its
// prelude and then the body as it is written.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ovrlrd/cloud/internal/app"
	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/devkit/samtemplate"
	"github.com/ovrlrd/cloud/internal/logs"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "invoke:", err)
		os.Exit(1)
	}
}

// functions maps -fn to the configuration and the template's logical id.
var functions = map[string]struct {
	kind    config.Function
	logical string
}{
	"auth":   {config.Auth, "AuthFunction"},
	"chat":   {config.Chat, "ChatFunction"},
	"stream": {config.Stream, "StreamFunction"},
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("invoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fnName := fs.String("fn", "", "the function: auth, chat or stream")
	if err := fs.Parse(args); err != nil {
		return err
	}
	fn, ok := functions[*fnName]
	if !ok || fs.NArg() != 1 {
		return errors.New("usage: invoke -fn auth|chat|stream EVENT.json")
	}
	event, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}

	defaults := map[string]string{
		"STAGE":      "local",
		"TABLE_NAME": "ovrlrd-invoke",
		"JWT_SECRET": "invoke:" + rand.Text() + rand.Text(),
	}
	if getenv("S3_ENDPOINT") == "" {
		bucket := getenv("SESSIONS_BUCKET")
		if bucket == "" {
			bucket = config.DefaultLocalBucket
		}
		mem := s3mem.New()
		if err := mem.CreateBucket(bucket); err != nil {
			return err
		}
		s3 := httptest.NewServer(gofakes3.New(mem).Server())
		defer s3.Close()
		defaults["S3_ENDPOINT"] = s3.URL
	}
	env := func(name string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return defaults[name]
	}
	if env("DYNAMODB_ENDPOINT") == "" {
		return errors.New("DYNAMODB_ENDPOINT is not set: run through `make invoke`, which starts DynamoDB Local")
	}
	cfg, err := config.Load(ctx, fn.kind, env)
	if err != nil {
		return err
	}
	a, err := app.New(ctx, cfg, logs.New(stderr, cfg.LogLevel))
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.Store.EnsureTable(ctx); err != nil {
		return fmt.Errorf("table %s: %w", cfg.TableName, err)
	}

	// The invocation gets what Lambda gives it: a request id and the
	// function's timeout from template.yaml as its deadline.
	timeout := functionTimeout(fn.logical)
	ictx, cancel := context.WithTimeout(lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{
		AwsRequestID:       "invoke-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		InvokedFunctionArn: "arn:aws:lambda:" + cfg.Region + ":000000000000:function:" + *fnName,
	}), timeout)
	defer cancel()

	switch *fnName {
	case "auth", "chat":
		var ev events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(event, &ev); err != nil {
			return fmt.Errorf("%s: not an HTTP API (payload 2.0) event: %w", fs.Arg(0), err)
		}
		h := a.Chat()
		if *fnName == "auth" {
			h = a.Auth()
		}
		resp, err := h(ictx, ev)
		if err != nil {
			return err
		}
		return writeJSON(stdout, resp)
	default:
		out, err := a.StreamLambda()(ictx, event)
		if err != nil {
			return err
		}
		resp, ok := out.(*events.LambdaFunctionURLStreamingResponse)
		if !ok {
			return writeJSON(stdout, out)
		}
		if c, ok := resp.Body.(io.Closer); ok {
			defer c.Close()
		}
		if err := writeJSON(stdout, map[string]any{"statusCode": resp.StatusCode, "headers": resp.Headers, "cookies": resp.Cookies}); err != nil {
			return err
		}
		_, err = io.Copy(stdout, resp.Body)
		return err
	}
}

// functionTimeout is the function's Timeout in template.yaml, when run from
// the repository; else Lambda's maximum.
func functionTimeout(logical string) time.Duration {
	tpl, err := samtemplate.Load(filepath.Join(".", "template.yaml"))
	if err != nil {
		return 15 * time.Minute
	}
	p, _ := tpl.Resources()[logical]["Properties"].(map[string]any)
	if n, err := strconv.Atoi(fmt.Sprint(p["Timeout"])); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	return 15 * time.Minute
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
