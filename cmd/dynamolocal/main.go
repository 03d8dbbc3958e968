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
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/dynamolocal"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
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

	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "DYNAMODB_ENDPOINT="+srv.Endpoint)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// Pass interrupts on, so an interrupted run still stops the server.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer func() { signal.Stop(sigs); close(sigs) }()
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	err = cmd.Wait()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitCode()
	default:
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
}
