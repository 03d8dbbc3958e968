package main

import (
	"context"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"
)

// dbTimer times the service's DynamoDB calls, to tell the database's share
// of the time to first byte from the rest.
type dbTimer struct {
	mu    sync.Mutex
	spans []span
}

type span struct{ start, end time.Time }

// option installs the timer on the service's DynamoDB client.
func (d *dbTimer) option() func(*dynamodb.Options) {
	timed := middleware.InitializeMiddlewareFunc("benchTimer",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			start := time.Now()
			out, md, err := next.HandleInitialize(ctx, in)
			d.mu.Lock()
			// Bounded: the phases that never read the spans make calls too.
			if len(d.spans) < 1024 {
				d.spans = append(d.spans, span{start, time.Now()})
			}
			d.mu.Unlock()
			return out, md, err
		})
	return func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(timed, middleware.Before)
		})
	}
}

// within returns the time spent in calls that ran between from and to
// (one request makes them one after another), and forgets every span.
func (d *dbTimer) within(from, to time.Time) time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	var sum time.Duration
	for _, s := range d.spans {
		if !s.start.Before(from) && !s.end.After(to) {
			sum += s.end.Sub(s.start)
		}
	}
	d.spans = d.spans[:0]
	return sum
}
