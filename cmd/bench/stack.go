package main

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/ovrlrd/cloud/internal/devkit/harness"
)

// stack is the whole service as `make dev` serves it (harness.Stack), with
// the bench's client signed in as one user and the service's DynamoDB calls
// timed.
type stack struct {
	*harness.Stack
	client        *harness.Client
	userID, token string
	db            dbTimer
}

// startStack builds the service, over DynamoDB Local at o.Endpoint or, when
// empty, one started for the run.
func startStack(ctx context.Context, o *options, logOut io.Writer) (*stack, error) {
	s := &stack{}
	hs, err := harness.New(ctx, harness.Options{
		Name: "bench", Flags: o.Flags, LogOut: logOut,
		// The bench starts far more turns a minute than a person would.
		Env: map[string]string{
			"RATE_LIMIT_TURN":  "999999/1m",
			"RATE_LIMIT_READ":  "999999/1m",
			"RATE_LIMIT_WRITE": "999999/1m",
		},
		DynamoDB: []func(*dynamodb.Options){s.db.option()},
	})
	if err != nil {
		return nil, err
	}
	s.Stack, s.client = hs, hs.NewClient(64)
	g, err := hs.SignIn(ctx, s.client, "bench", "bench@example.com")
	if err != nil {
		s.close()
		return nil, err
	}
	s.token, s.userID = g.SessionToken, g.UserID
	return s, nil
}

// conversation creates a conversation for a turn, straight in the table
// (set-up, not measured), so every turn has its own lease.
func (s *stack) conversation(ctx context.Context) (string, error) {
	return s.NewConversation(ctx, s.userID)
}

// stream runs a turn on conversation conv (see harness.Client.Stream).
func (s *stack) stream(ctx context.Context, conv, prompt string, lat *harness.Histogram, atFirstByte func()) (harness.Turn, error) {
	return s.client.Stream(ctx, "/chat/"+conv+"/stream", prompt, s.token, lat, atFirstByte)
}

// cancel is POST /chat/{id}/cancel.
func (s *stack) cancel(ctx context.Context, conv string) error {
	status, body, err := s.client.Call(ctx, http.MethodPost, "/chat/"+conv+"/cancel", "", s.token, false)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("POST /chat/%s/cancel: %d %s", conv, status, body)
	}
	return err
}

// close stops everything the stack started, the client's idle connections
// first.
func (s *stack) close() {
	s.client.HTTP.CloseIdleConnections()
	s.Stack.Close()
}
