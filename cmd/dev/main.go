// Command dev runs the whole API on this machine: DynamoDB Local with a
// persistent folder, the table, locally generated secrets, and every function
// behind one address routed as CloudFront and the HTTP API route in AWS. The
// server itself is internal/devkit/devserver, which the browser tests start
// too.
//
//	make dev    # then: curl http://127.0.0.1:3000/health
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ovrlrd/cloud/internal/devkit/devserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := devserver.Run(ctx, devserver.Options{Getenv: os.Getenv, Out: os.Stdout}); err != nil {
		fmt.Fprintln(os.Stderr, "dev:", err)
		os.Exit(1)
	}
}
