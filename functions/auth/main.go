// Command auth is the AuthFunction: sign-in, refresh and logout. It only
// wires: config (failing fast), the shared dependencies, then the Lambda
// runtime loop.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/ovrlrd/cloud/internal/app"
	"github.com/ovrlrd/cloud/internal/config"
)

func main() {
	lambda.Start(app.Init(config.Auth).Auth())
}
