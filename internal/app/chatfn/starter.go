package chatfn

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/ovrlrd/cloud/internal/app"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// lambdaStarter starts buffered turns in the stream function with an
// asynchronous invoke, so they outlive the HTTP API's 30 s.
type lambdaStarter struct {
	client   *lambda.Client
	function string
}

func (s lambdaStarter) Start(ctx context.Context, j ovrlrd.Turn) error {
	if err := invokeAsync(ctx, s.client, s.function, app.TurnEvent{Turn: &j}); err != nil {
		return ovrlrd.Wrap(ovrlrd.EUNAVAILABLE, "Could not start the turn. Please try again.", err)
	}
	return nil
}

// invokeTimeout bounds queueing one asynchronous invocation.
const invokeTimeout = 5 * time.Second

// invokeAsync queues event for function, as an asynchronous invocation:
// Lambda runs it after this returns, and retries it if it fails.
func invokeAsync(ctx context.Context, client *lambda.Client, function string, event any) error {
	payload, err := json.Marshal(event)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, invokeTimeout)
	defer cancel()
	_, err = client.Invoke(ctx, &lambda.InvokeInput{
		FunctionName:   aws.String(function),
		InvocationType: types.InvocationTypeEvent,
		Payload:        payload,
	})
	if err != nil {
		return fmt.Errorf("invoke %s: %w", function, err)
	}
	return nil
}
