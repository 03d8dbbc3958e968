package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// Issue 19's rows: what a turn's event log costs in DynamoDB writes, and
// how far behind its turn a client that reattached follows it.
const (
	mLogWrites  = "event log writes per turn"
	mLogRate    = "event log writes per second of turn"
	mWatcher50  = "event to reattached watcher p50"
	mWatcher99  = "event to reattached watcher p99"
	logRateGoal = 5.0 // writes per second of turn
)

// The service's timings the watcher's delay is made of, as
// internal/turn (logEvery) and internal/watch (pollEvery) set them: an
// event waits at most a batch's time to be written, then at most a poll's
// to be read.
const (
	logBatchEvery = 250 * time.Millisecond
	watchPoll     = 200 * time.Millisecond
	// watchSlack is a write, a read and the relay, at their slowest here.
	watchSlack = 50 * time.Millisecond
)

// logCounter counts the service's DynamoDB calls that write event log
// items (sort key EV#...) of one conversation: PutItem calls, and the
// TransactWriteItems that save a turn with its last events.
type logCounter struct {
	mu               sync.Mutex
	pk               string // the conversation's partition, "" counts nothing
	puts, txs, items int
}

// option installs the counter on the service's DynamoDB client.
func (c *logCounter) option() func(*dynamodb.Options) {
	count := middleware.InitializeMiddlewareFunc("benchLogCounter",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			c.record(in.Parameters)
			return next.HandleInitialize(ctx, in)
		})
	return func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(count, middleware.Before)
		})
	}
}

func (c *logCounter) record(params any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pk == "" {
		return
	}
	switch in := params.(type) {
	case *dynamodb.PutItemInput:
		if c.isLog(in.Item) {
			c.puts++
			c.items++
		}
	case *dynamodb.TransactWriteItemsInput:
		n := 0
		for _, it := range in.TransactItems {
			if it.Put != nil && c.isLog(it.Put.Item) {
				n++
			}
		}
		if n > 0 {
			c.txs++
			c.items += n
		}
	}
}

// isLog reports whether item is an event log item of the conversation
// counted; c.mu is held.
func (c *logCounter) isLog(item map[string]types.AttributeValue) bool {
	pk, _ := item["PK"].(*types.AttributeValueMemberS)
	sk, _ := item["SK"].(*types.AttributeValueMemberS)
	return pk != nil && sk != nil && pk.Value == c.pk && strings.HasPrefix(sk.Value, "EV#")
}

// watch starts counting conv's log writes from zero.
func (c *logCounter) watch(conv string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pk, c.puts, c.txs, c.items = "CONV#"+conv, 0, 0, 0
}

// stop ends the count and returns it.
func (c *logCounter) stop() (puts, txs, items int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pk = ""
	return c.puts, c.txs, c.items
}

// eventLog streams one turn of o.logN texts at o.logRate a second, as the
// fake CLI writes them (each its wall-clock stamp), on a conversation of
// its own, and counts the calls that write its log. A watcher reattaches
// as the turn's first byte arrives, as an app that lost its stream would:
// it reads the turn's id from GET /chat/{id}'s activeTurn, then follows
// GET /chat/{id}/stream from before the first event (Last-Event-ID
// <turn>.0); each chunk's delay is its arrival there minus its stamp.
func (b *bench) eventLog(ctx context.Context) error {
	n, rate := b.o.logN, b.o.logRate
	conv, err := b.s.newConversation(ctx, b.userID)
	if err != nil {
		return err
	}
	lat, live := samples{ds: make([]time.Duration, 0, n)}, samples{ds: make([]time.Duration, 0, n)}
	var (
		watcher    Turn
		watcherErr error
		turnID     string
		wg         sync.WaitGroup
	)
	b.evlog.watch(conv)
	r, err := b.turnOn(ctx, conv, claudetest.Script("rate", "n", n, "rate", rate), n, &live, func() {
		wg.Go(func() {
			if turnID, watcherErr = b.activeTurn(ctx, conv); watcherErr == nil {
				watcher, watcherErr = b.s.Watch(ctx, conv, ovrlrd.EventID(turnID, 0), b.token, &lat)
			}
		})
	})
	wg.Wait()
	puts, txs, items := b.evlog.stop()
	switch {
	case err != nil:
		return err
	case watcherErr != nil:
		return fmt.Errorf("the watcher: %w", watcherErr)
	case watcher.Terminal != ovrlrd.OutcomeComplete:
		return fmt.Errorf("the watcher's stream ended with %s %q", watcher.Terminal, watcher.Message)
	case watcher.Chunks != n:
		return fmt.Errorf("the watcher got %d of %d events", watcher.Chunks, n)
	case watcher.FirstID != ovrlrd.EventID(turnID, 1):
		return fmt.Errorf("the watcher's first event is %q, want %q", watcher.FirstID, ovrlrd.EventID(turnID, 1))
	}
	took := r.End.Sub(r.Sent)
	writes := puts + txs
	perSecond := float64(writes) / took.Seconds()
	b.set(mLogWrites, fmt.Sprintf("%d (%d PutItem + %d TransactWriteItems saving the turn; %d items) for %d events over a %.1f s turn",
		writes, puts, txs, items, n, took.Seconds()), "", markInfo)
	b.set(mLogRate, fmt.Sprintf("%.2f/s", perSecond), fmt.Sprintf("≤ %.0f/s", logRateGoal), judge(perSecond <= logRateGoal, markMiss))
	b.set(mWatcher50, lat.p50p90(), "", markInfo)
	b.atMost(mWatcher99, lat.at(0.99), logBatchEvery+watchPoll+watchSlack,
		fmt.Sprintf(" (batch %d ms + poll %d ms + %d ms)", logBatchEvery.Milliseconds(), watchPoll.Milliseconds(), watchSlack.Milliseconds()),
		fmt.Sprintf("%s (max %s; the live stream's p99 %s)", fmtMS(lat.at(0.99)), fmtMS(lat.at(1)), fmtMS(live.at(0.99))))
	b.notes = append(b.notes, fmt.Sprintf(`Event log: one turn of %d texts at %d/s on a conversation of its own; writes are the service's DynamoDB calls that put EV# items in that conversation's partition (PutItem from the turn's journal, TransactWriteItems the save carrying the last events), per second of the turn from its POST to its stream's end. Watcher: reattached as the turn's first byte arrived, with the id from GET /chat/{id}'s activeTurn (Last-Event-ID <turn>.0), and read to the terminal event; its delay is arrival minus the fake CLI's stamp, as for the relay; an event waits up to %d ms for its batch and %d ms for the watcher's next read (the service's batching and polling), then for one write and one read.`,
		n, rate, logBatchEvery.Milliseconds(), watchPoll.Milliseconds()))
	return nil
}

// activeTurn reads conv's running turn from GET /chat/{id}, asking again
// until the turn shows (its lease is taken before its first byte, so at
// once).
func (b *bench) activeTurn(ctx context.Context, conv string) (string, error) {
	for deadline := time.Now().Add(5 * time.Second); ; {
		status, body, err := b.s.Call(ctx, http.MethodGet, "/chat/"+conv, "", b.token)
		if err != nil {
			return "", err
		}
		var d struct {
			ActiveTurn *struct{ ID string } `json:"activeTurn"`
		}
		if status != http.StatusOK || json.Unmarshal(body, &d) != nil {
			return "", fmt.Errorf("GET /chat/%s: %d %.200s", conv, status, body)
		}
		if d.ActiveTurn != nil && d.ActiveTurn.ID != "" {
			return d.ActiveTurn.ID, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("GET /chat/%s: no activeTurn while the turn streams", conv)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
