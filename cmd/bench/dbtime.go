package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"
)

// dbTimer times the service's DynamoDB calls by operation, to show what a
// phase's latency is made of.
type dbTimer struct {
	mu  sync.Mutex
	ops map[string]*hist
}

// option installs the timer on the service's DynamoDB client.
func (d *dbTimer) option() func(*dynamodb.Options) {
	timed := middleware.InitializeMiddlewareFunc("benchTimer",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			start := time.Now()
			out, md, err := next.HandleInitialize(ctx, in)
			d.add(awsmiddleware.GetOperationName(ctx), time.Since(start))
			return out, md, err
		})
	return func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(timed, middleware.Before)
		})
	}
}

func (d *dbTimer) add(op string, took time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ops == nil {
		d.ops = map[string]*hist{}
	}
	h := d.ops[op]
	if h == nil {
		h = &hist{}
		d.ops[op] = h
	}
	h.add(int64(took))
}

// take returns the calls since the last take, as "Op ×n p50 x ms" in
// name order, and starts over.
func (d *dbTimer) take(per int) string {
	d.mu.Lock()
	ops := d.ops
	d.ops = nil
	d.mu.Unlock()
	names := make([]string, 0, len(ops))
	for name := range ops {
		names = append(names, name)
	}
	slices.Sort(names)
	var parts []string
	for _, name := range names {
		h := ops[name]
		parts = append(parts, fmt.Sprintf("%s %.1f/turn p50 %s", name, float64(h.n)/float64(max(per, 1)), fmtMS(h.quantile(0.5))))
	}
	return strings.Join(parts, "; ")
}
