// Command invoke runs one Lambda event through one function's real handler,
// in this process: `sam local invoke` without Docker.
//
//	make invoke FN=chat EVENT=events/chat-health.json
//
// It builds the functions as make dev does, with fn's settings, in the local
// stage, with DynamoDB Local from DYNAMODB_ENDPOINT (`make invoke` starts
// one), the table and bucket created if missing, an in-memory S3 stand-in
// unless S3_ENDPOINT is set, and a random JWT key unless JWT_SECRET is set;
// anything exported in the environment wins. It prints the function's
// response: the JSON Lambda would get, or for a streamed response its
// prelude and then the body as it is written.
package main

import (
	"cmp"
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
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/devkit/gateway"
	"github.com/ovrlrd/cloud/internal/devkit/samtemplate"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "invoke:", err)
		os.Exit(1)
	}
}

// logicalIDs are the functions' resources in template.yaml, by -fn.
var logicalIDs = map[config.Function]gateway.Function{config.Auth: gateway.Auth, config.Chat: gateway.Chat, config.Stream: gateway.Stream}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("invoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fnName := fs.String("fn", "", "the function: auth, chat or stream")
	if err := fs.Parse(args); err != nil {
		return err
	}
	fn := config.Function(*fnName)
	logical, ok := logicalIDs[fn]
	if !ok || fs.NArg() != 1 {
		return errors.New("usage: invoke -fn auth|chat|stream EVENT.json")
	}
	event, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	if getenv("DYNAMODB_ENDPOINT") == "" {
		return errors.New("DYNAMODB_ENDPOINT is not set: run through `make invoke`, which starts DynamoDB Local")
	}

	// Unused when S3_ENDPOINT is exported, and then harmless: in memory.
	s3 := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	defer s3.Close()
	defaults := map[string]string{
		"STAGE": "local", "TABLE_NAME": "ovrlrd-invoke", "JWT_SECRET": "invoke:" + rand.Text() + rand.Text(), "S3_ENDPOINT": s3.URL,
	}
	s, err := gateway.NewLocal(ctx, fn, func(name string) string { return cmp.Or(getenv(name), defaults[name]) }, stderr, gateway.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	// What each function's main.go hands the Lambda runtime.
	handler := map[config.Function]func(context.Context, json.RawMessage) (any, error){
		config.Auth: func(ctx context.Context, raw json.RawMessage) (any, error) {
			// The typed handler, wrapped as lambda.Start wraps it.
			out, err := lambda.NewHandler(s.Auth()).Invoke(ctx, raw)
			return json.RawMessage(out), err
		},
		config.Chat:   s.Chat.Lambda(),
		config.Stream: s.Stream.Lambda(),
	}[fn]

	// The invocation gets what Lambda gives it: a request id and the
	// function's timeout from template.yaml as its deadline.
	ictx, cancel := context.WithTimeout(lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{
		AwsRequestID:       "invoke-" + rand.Text(),
		InvokedFunctionArn: "arn:aws:lambda:" + s.Config.Region + ":000000000000:function:" + *fnName,
	}), functionTimeout(string(logical)))
	defer cancel()
	out, err := handler(ictx, event)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	resp, ok := out.(*events.LambdaFunctionURLStreamingResponse)
	if !ok {
		return enc.Encode(out)
	}
	defer resp.Close()
	if err := enc.Encode(map[string]any{"statusCode": resp.StatusCode, "headers": resp.Headers, "cookies": resp.Cookies}); err != nil {
		return err
	}
	_, err = io.Copy(stdout, resp.Body)
	return err
}

// functionTimeout is the function's Timeout in template.yaml, when run from
// the repository; else Lambda's maximum.
func functionTimeout(logical string) time.Duration {
	if tpl, err := samtemplate.Load("template.yaml"); err == nil {
		p, _ := tpl.Resources()[logical]["Properties"].(map[string]any)
		if d, err := time.ParseDuration(fmt.Sprint(p["Timeout"]) + "s"); err == nil && d > 0 {
			return d
		}
	}
	return 15 * time.Minute
}
