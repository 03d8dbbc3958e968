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
	"github.com/ovrlrd/cloud/internal/turn"
)

// turnEvent is the internal event the chat function sends the stream
// function to run a buffered turn. Only IAM principals allowed to invoke the
// function can send it; a Function URL request never has this shape.
type turnEvent struct {
	Turn *turn.Job `json:"ovrlrdTurn"`
}

// lambdaStarter starts buffered turns in the stream function with an
// asynchronous invoke, so they outlive the HTTP API's 30 s.
type lambdaStarter struct {
	client   *lambda.Client
	function string
}

func (s lambdaStarter) Start(ctx context.Context, j turn.Job) error {
	payload, err := json.Marshal(turnEvent{Turn: &j})
	if err != nil {
		return ovrlrd.Wrap(ovrlrd.EINTERNAL, "Internal server error", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = s.client.Invoke(ctx, &lambda.InvokeInput{
		FunctionName:   aws.String(s.function),
		InvocationType: types.InvocationTypeEvent,
		Payload:        payload,
	})
	if err != nil {
		return ovrlrd.Wrap(ovrlrd.EUNAVAILABLE, "Could not start the turn. Please try again.", fmt.Errorf("invoke %s: %w", s.function, err))
	}
	return nil
}

// localStarter runs buffered turns in this process (make dev, tests): the
// same Run the stream function calls, on a goroutine the App owns and waits
// for at shutdown.
type localStarter struct {
	turns   *turn.Service
	timeout time.Duration
	wg      *sync.WaitGroup
}

func (s localStarter) Start(ctx context.Context, j turn.Job) error {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
		defer cancel()
		s.turns.Run(ctx, j, nil)
	}()
	return nil
}
