package storetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"
)

// CallCounter counts DynamoDB API calls by operation name (Query, GetItem,
// TransactWriteItems, ...), and when each began and ended, so tests can pin
// the round trips an operation costs and how many of them its caller waits
// for one after another. SDK-level retries of one call count once.
type CallCounter struct {
	mu    sync.Mutex
	n     map[string]int
	calls []call
	begun int           // calls begun since the last Take
	hold  int           // what Hold asked for
	held  chan struct{} // closed once begun reaches hold
}

// holdAtMost bounds Hold's wait, which only code that makes its calls one
// after another ever reaches.
const holdAtMost = 5 * time.Second

type call struct {
	op         string
	start, end time.Time
}

// Option installs the counter on a client built by store.NewDB.
func (c *CallCounter) Option() func(*dynamodb.Options) {
	return aroundEachCall("ovrlrdCallCounter", func(op string) (func(), error) {
		start := time.Now()
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.n == nil {
			c.n = map[string]int{}
		}
		c.n[op]++
		c.begun++
		held := c.held
		if held != nil && c.begun >= c.hold {
			close(c.held)
			c.held = nil
		}
		return func() {
			if held != nil {
				select {
				case <-held:
				case <-time.After(holdAtMost):
				}
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			c.calls = append(c.calls, call{op, start, time.Now()})
		}, nil
	})
}

// Hold keeps each answered call from its caller until n calls have begun
// since the last Take (or for at most holdAtMost), so that calls meant to
// run beside each other are seen to, however late a busy machine starts
// them. Calls made one after another still count as a chain: the first
// waits out the bound, and the next begins after it ended.
func (c *CallCounter) Hold(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hold = n
	if c.begun < n {
		c.held = make(chan struct{})
	}
}

// Take returns the counts since the last Take and starts over.
func (c *CallCounter) Take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n, c.calls, c.begun, c.hold = map[string]int{}, nil, 0, 0
	if c.held != nil {
		close(c.held)
		c.held = nil
	}
	return n
}

// Waited looks at the ended calls since the last Take that began before t
// (all of them for a zero t): how many of each operation there were, and
// how many round trips a caller waited for in turn, the longest chain of
// calls each of which began after the one before it ended.
func (c *CallCounter) Waited(t time.Time) (counts map[string]int, sequential int) {
	c.mu.Lock()
	calls := slices.Clone(c.calls)
	c.mu.Unlock()
	calls = slices.DeleteFunc(calls, func(k call) bool { return !t.IsZero() && !k.start.Before(t) })
	// The earliest end first: no chain is longer than the one this picks.
	slices.SortFunc(calls, func(a, b call) int { return a.end.Compare(b.end) })
	counts = map[string]int{}
	var last time.Time
	for _, k := range calls {
		counts[k.op]++
		if sequential == 0 || !k.start.Before(last) {
			sequential, last = sequential+1, k.end
		}
	}
	return counts, sequential
}

// Fault fails, before it is sent, the first call of one DynamoDB operation
// made once armed: what a caller sees when the database, or the
// invocation's time, gives out part way through.
type Fault struct {
	Op    string // the operation, e.g. "BatchWriteItem"
	Armed atomic.Bool
	// Times, set with Store, is how many calls fail besides the one Armed
	// fails; each call of Op counts it down, past zero too.
	Times atomic.Int32
	Fired atomic.Int32
}

// Option adds the fault to a DynamoDB client.
func (f *Fault) Option() func(*dynamodb.Options) {
	return aroundEachCall("ovrlrdTestFault", func(op string) (func(), error) {
		if op == f.Op && (f.Armed.CompareAndSwap(true, false) || f.Times.Add(-1) >= 0) {
			f.Fired.Add(1)
			return nil, errors.New("injected fault")
		}
		return func() {}, nil
	})
}

// Stall holds, before it is sent, the first call of one DynamoDB
// operation made once armed, until Release is closed: what a caller sees
// when that call is slow. Stalled is closed when the call is held.
type Stall struct {
	Op      string
	Armed   atomic.Bool
	Stalled chan struct{}
	Release chan struct{}
}

// NewStall returns an unarmed Stall of op.
func NewStall(op string) *Stall {
	return &Stall{Op: op, Stalled: make(chan struct{}), Release: make(chan struct{})}
}

// Option adds the stall to a DynamoDB client.
func (s *Stall) Option() func(*dynamodb.Options) {
	return aroundEachCall("ovrlrdTestStall", func(op string) (func(), error) {
		if op == s.Op && s.Armed.CompareAndSwap(true, false) {
			close(s.Stalled)
			<-s.Release
		}
		return func() {}, nil
	})
}

// aroundEachCall runs f before each call of a client, and what f returns
// once the call ended, however often the SDK retried it; an error from f
// fails the call unsent.
func aroundEachCall(name string, f func(op string) (func(), error)) func(*dynamodb.Options) {
	step := middleware.InitializeMiddlewareFunc(name,
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			done, err := f(awsmiddleware.GetOperationName(ctx))
			if err != nil {
				return middleware.InitializeOutput{}, middleware.Metadata{}, err
			}
			defer done()
			return next.HandleInitialize(ctx, in)
		})
	return func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(step, middleware.Before)
		})
	}
}
