// Command stream is the StreamFunction. It only wires: config (failing
// fast), dependencies, then the Lambda runtime loop, which serves the
// Function URL (streamed), the HTTP API's project routes and the chat
// function's buffered turns.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/ovrlrd/cloud/internal/app/streamfn"
)

func main() {
	lambda.Start(streamfn.Init().Lambda())
}
