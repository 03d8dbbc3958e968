package storetest

import (
	"context"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"
)

// CallCounter counts DynamoDB API calls by operation name (Query, GetItem,
// TransactWriteItems, ...), so tests can pin the round trips an operation
// costs. SDK-level retries of one call count once.
type CallCounter struct {
	mu sync.Mutex
	n  map[string]int
}

// Option installs the counter on a client built by store.NewDB.
func (c *CallCounter) Option() func(*dynamodb.Options) {
	count := middleware.InitializeMiddlewareFunc("ovrlrdCallCounter",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			c.mu.Lock()
			if c.n == nil {
				c.n = map[string]int{}
			}
			c.n[awsmiddleware.GetOperationName(ctx)]++
			c.mu.Unlock()
			return next.HandleInitialize(ctx, in)
		})
	return func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(count, middleware.Before)
		})
	}
}

// Take returns the counts since the last Take and starts over.
func (c *CallCounter) Take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = nil
	if n == nil {
		n = map[string]int{}
	}
	return n
}
