// Command dynamolocal runs a command with one DynamoDB Local up for its whole
// duration, exported to it as DYNAMODB_ENDPOINT, then stops the server:
//
//	go run ./cmd/dynamolocal -- go test ./...
//
// `make test` uses it so every test package shares one engine (each with its
// own table) instead of starting one per package.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/dynamolocal"
)

func main() {
	flag.Parse() // takes the "--" before the command
	os.Exit(run(flag.Args()))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: dynamolocal -- command [args...]")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	srv, err := dynamolocal.Start(ctx, dynamolocal.Options{})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer srv.Stop()

	// An interrupted run is passed the interrupt, so it ends and the
	// server stops with it.
	sigCtx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := exec.CommandContext(sigCtx, args[0], args[1:]...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.Env = append(os.Environ(), "DYNAMODB_ENDPOINT="+srv.Endpoint)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil && cmd.ProcessState == nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return cmd.ProcessState.ExitCode()
}
