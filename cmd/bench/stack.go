package main

import (
	"context"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/ovrlrd/cloud/internal/devkit/harness"
)

// stack is the whole service as `make dev` serves it (harness.Stack), with
// the bench's client signed in as one user and the service's DynamoDB calls
// timed.
type stack struct {
	*harness.Stack
	client *client
	userID string
	db     dbTimer
}

// maxTurn is the longest turn the configuration accepts (CLAUDE_TIMEOUT).
const maxTurn = 15 * time.Minute

// startStack builds the service. o.endpoint is DynamoDB Local's URL; when
// empty, one is started for the run.
func startStack(ctx context.Context, o *options, logOut io.Writer) (*stack, error) {
	s := &stack{}
	hs, err := harness.New(ctx, harness.Options{
		Name: "bench", Endpoint: o.endpoint, CLIPath: o.cliPath, LogLevel: o.logLevel, LogOut: logOut,
		// A turn may not outlive the run, nor Lambda's limit, which the
		// configuration enforces; the run itself may be longer.
		Timeout: min(o.timeout, maxTurn),
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
	s.Stack = hs
	s.client = newClient(hs.Server.URL, hs.APIKey)
	g, err := hs.SignIn(ctx, s.client.http, "bench", "bench@example.com")
	if err != nil {
		s.close()
		return nil, err
	}
	s.client.token, s.userID = g.SessionToken, g.UserID
	return s, nil
}

// conversation creates a conversation for a turn, straight in the table
// (set-up, not measured), so every turn has its own lease.
func (s *stack) conversation(ctx context.Context) (string, error) {
	return s.NewConversation(ctx, s.userID)
}

// close stops everything the stack started, the client's idle connections
// first.
func (s *stack) close() {
	s.client.http.CloseIdleConnections()
	s.Stack.Close()
}
