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

// lambdaFunction is a function, the stream function or this one, that is
// handed work with an asynchronous invoke: Lambda runs it after this
// returns, and retries it if it fails.
type lambdaFunction struct {
	client *lambda.Client
	name   string
}

// Start starts a buffered turn in the stream function, so that it outlives
// the HTTP API's 30 s.
func (l lambdaFunction) Start(ctx context.Context, j ovrlrd.Turn) error {
	if err := l.invoke(ctx, app.TurnEvent{Turn: &j}); err != nil {
		return ovrlrd.Wrap(ovrlrd.EUNAVAILABLE, "Could not start the turn. Please try again.", err)
	}
	return nil
}

// Finish hands an account's deletion to this function's own invocation.
func (l lambdaFunction) Finish(ctx context.Context, userID string) error {
	return l.invoke(ctx, finishEvent{UserID: userID})
}

// invokeTimeout bounds queueing one asynchronous invocation.
const invokeTimeout = 5 * time.Second

func (l lambdaFunction) invoke(ctx context.Context, event any) error {
	payload, err := json.Marshal(event)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, invokeTimeout)
	defer cancel()
	_, err = l.client.Invoke(ctx, &lambda.InvokeInput{
		FunctionName:   aws.String(l.name),
		InvocationType: types.InvocationTypeEvent,
		Payload:        payload,
	})
	if err != nil {
		return fmt.Errorf("invoke %s: %w", l.name, err)
	}
	return nil
}
