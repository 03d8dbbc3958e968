package storetest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

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
	return beforeEachCall("ovrlrdCallCounter", func(op string) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.n == nil {
			c.n = map[string]int{}
		}
		c.n[op]++
		return nil
	})
}

// Take returns the counts since the last Take and starts over.
func (c *CallCounter) Take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

// Fault fails, before it is sent, the first call of one DynamoDB operation
// made once armed: what a caller sees when the database, or the
// invocation's time, gives out part way through.
type Fault struct {
	Op    string // the operation, e.g. "BatchWriteItem"
	Armed atomic.Bool
	// Times is how many calls fail besides the one Armed fails.
	Times atomic.Int32
	Fired atomic.Int32
}

// take reports whether this call fails, using up one armed failure.
func (f *Fault) take() bool {
	if f.Armed.CompareAndSwap(true, false) {
		return true
	}
	for {
		n := f.Times.Load()
		if n <= 0 {
			return false
		}
		if f.Times.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// Option adds the fault to a DynamoDB client.
func (f *Fault) Option() func(*dynamodb.Options) {
	return beforeEachCall("ovrlrdTestFault", func(op string) error {
		if op != f.Op || !f.take() {
			return nil
		}
		f.Fired.Add(1)
		return errors.New("injected fault")
	})
}

// beforeEachCall runs f before each call of a client, once however often
// the SDK retries it; an error from f fails the call unsent.
func beforeEachCall(name string, f func(op string) error) func(*dynamodb.Options) {
	step := middleware.InitializeMiddlewareFunc(name,
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if err := f(awsmiddleware.GetOperationName(ctx)); err != nil {
				return middleware.InitializeOutput{}, middleware.Metadata{}, err
			}
			return next.HandleInitialize(ctx, in)
		})
	return func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(step, middleware.Before)
		})
	}
}
