// Command chat is the ChatFunction. It only wires: config (failing fast),
// dependencies, then the Lambda runtime loop, which serves both the HTTP API
// and the function's own event that finishes an account deletion.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/ovrlrd/cloud/internal/app/chatfn"
)

func main() {
	lambda.Start(chatfn.Init().Lambda())
}
