package app

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// turnEvent is the internal event the chat function sends the stream
// function to run a buffered turn. Only IAM principals allowed to invoke the
// function can send it; a Function URL request never has this shape.
type turnEvent struct {
	Turn *ovrlrd.Turn `json:"ovrlrdTurn"`
}

// lambdaStarter starts buffered turns in the stream function with an
// asynchronous invoke, so they outlive the HTTP API's 30 s.
type lambdaStarter struct {
	client   *lambda.Client
	function string
}

func (s lambdaStarter) Start(ctx context.Context, j ovrlrd.Turn) error {
	if err := invokeAsync(ctx, s.client, s.function, turnEvent{Turn: &j}); err != nil {
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

// localStarter runs buffered turns in this process (make dev, tests) the
// way the stream function runs their events (App.runStarted, which claims
// the turn first), on a goroutine the App owns and waits for at shutdown.
type localStarter struct {
	run     func(context.Context, ovrlrd.Turn) error
	timeout time.Duration
	wg      *sync.WaitGroup
}

func (s localStarter) Start(ctx context.Context, j ovrlrd.Turn) error {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
		defer cancel()
		// runStarted logs a failed claim; nobody here could retry it.
		_ = s.run(ctx, j)
	}()
	return nil
}
