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

	"github.com/ovrlrd/cloud/internal/devkit/harness"
)

// dbTimer times the service's DynamoDB calls by operation, to show what a
// phase's latency is made of.
type dbTimer struct {
	mu    sync.Mutex
	ops   map[string]*harness.Histogram
	spans []span
}

// span is one call's start and end.
type span struct {
	op         string
	start, end time.Time
}

// option installs the timer on the service's DynamoDB client.
func (d *dbTimer) option() func(*dynamodb.Options) {
	timed := middleware.InitializeMiddlewareFunc("benchTimer",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			start := time.Now()
			out, md, err := next.HandleInitialize(ctx, in)
			d.add(span{awsmiddleware.GetOperationName(ctx), start, time.Now()})
			return out, md, err
		})
	return func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(timed, middleware.Before)
		})
	}
}

func (d *dbTimer) add(s span) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.spans) < 1024 {
		d.spans = append(d.spans, s)
	}
	if d.ops == nil {
		d.ops = map[string]*harness.Histogram{}
	}
	h := d.ops[s.op]
	if h == nil {
		h = &harness.Histogram{}
		d.ops[s.op] = h
	}
	h.Add(s.end.Sub(s.start))
}

// within returns the time spent in calls that ran between from and to
// (calls are sequential within one request) and counts them by operation in
// ops, if not nil; it forgets every span.
func (d *dbTimer) within(from, to time.Time, ops map[string]int) time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	var sum time.Duration
	for _, s := range d.spans {
		if !s.start.Before(from) && !s.end.After(to) {
			sum += s.end.Sub(s.start)
			if ops != nil {
				ops[s.op]++
			}
		}
	}
	d.spans = d.spans[:0]
	return sum
}

// perTurn writes counts as "Op ×n" per turn, in name order.
func perTurn(ops map[string]int, turns int) string {
	names := make([]string, 0, len(ops))
	for name := range ops {
		names = append(names, name)
	}
	slices.Sort(names)
	var parts []string
	for _, name := range names {
		parts = append(parts, fmt.Sprintf("%s ×%.1f", name, float64(ops[name])/float64(max(turns, 1))))
	}
	return strings.Join(parts, ", ")
}

// take returns the calls since the last take, as "Op ×n p50 x ms" in
// name order, and starts over.
func (d *dbTimer) take(per int) string {
	d.mu.Lock()
	ops := d.ops
	d.ops, d.spans = nil, d.spans[:0]
	d.mu.Unlock()
	names := make([]string, 0, len(ops))
	for name := range ops {
		names = append(names, name)
	}
	slices.Sort(names)
	var parts []string
	for _, name := range names {
		h := ops[name]
		parts = append(parts, fmt.Sprintf("%s %.1f/turn p50 %s", name, float64(h.Count())/float64(max(per, 1)), fmtMS(h.Quantile(0.5))))
	}
	return strings.Join(parts, "; ")
}
