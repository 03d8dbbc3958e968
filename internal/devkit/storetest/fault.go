package storetest

import (
	"context"
	"errors"
	"sync/atomic"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"
)

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
	fail := middleware.InitializeMiddlewareFunc("ovrlrdTestFault",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if awsmiddleware.GetOperationName(ctx) == f.Op && f.take() {
				f.Fired.Add(1)
				return middleware.InitializeOutput{}, middleware.Metadata{}, errors.New("injected fault")
			}
			return next.HandleInitialize(ctx, in)
		})
	return func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(fail, middleware.Before)
		})
	}
}
