// Package store keeps every piece of state in one DynamoDB table, through
// guregu/dynamo. Callers see domain types and domain errors; keys, items and
// driver errors stay inside.
package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/google/uuid"
	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/cursor"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// Store is the table, seen through the domain.
type Store struct {
	db    *dynamo.DB
	table dynamo.Table
	now   func() time.Time
	// cursors signs list cursors so a forged, corrupted or replayed one is
	// refused.
	cursors cursor.Codec
}

// Options configure a Store.
type Options struct {
	Table     string
	CursorKey []byte
	// Now is the clock; nil means time.Now. Tests pin it.
	Now func() time.Time
}

// NewDB returns a DynamoDB handle. endpoint is empty in AWS and points at
// DynamoDB Local otherwise. optFns adjust the SDK client (tests count calls
// and inject faults with them).
func NewDB(cfg aws.Config, endpoint string, optFns ...func(*dynamodb.Options)) *dynamo.DB {
	local := func(o *dynamodb.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
			// DynamoDB Local does not send the CRC32 header the SDK checks.
			o.DisableValidateResponseChecksum = true
		}
	}
	return dynamo.New(cfg, append([]func(*dynamodb.Options){local}, optFns...)...)
}

// New returns a Store over an existing table.
func New(db *dynamo.DB, opts Options) *Store {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Store{
		db: db, table: db.Table(opts.Table), now: now, cursors: cursor.New(opts.CursorKey),
	}
}

// Ping checks that the table can be reached.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := s.table.Describe().Run(ctx); err != nil {
		return ovrlrd.Wrap(ovrlrd.EUNAVAILABLE, "The database is unavailable.", fmt.Errorf("describe table: %w", err))
	}
	return nil
}

// ttlOf returns the epoch-seconds value DynamoDB's TTL sweeper expects.
func ttlOf(t time.Time) int64 { return t.Unix() }

// nowMillis is the clock at the millisecond resolution everything is stored
// in, so a value read back equals the value written.
func (s *Store) nowMillis() int64 { return s.now().UnixMilli() }

// timeOf turns stored epoch milliseconds back into a time.
func timeOf(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// sortableMillis renders epoch milliseconds so that string order is time
// order (13 digits last until the year 2286).
func sortableMillis(ms int64) string { return fmt.Sprintf("%013d", max(ms, 0)) }

// newID returns a fresh lowercase UUID v4, the app's id format.
func newID() string { return uuid.NewString() }

// isID reports whether s is an id in exactly the form newID makes. Anything
// else cannot name an item, so lookups answer "not found" without a call.
func isID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && u.String() == s
}

// dbError wraps a driver failure; its text stays in logs. A request the
// service refused as malformed is our bug; anything else (network, throttling,
// a server fault, a deadline) is the database being unavailable.
func dbError(op string, err error) error {
	err = fmt.Errorf("%s: %w", op, err)
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorFault() == smithy.FaultClient {
		switch api.ErrorCode() {
		case "ProvisionedThroughputExceededException", "ThrottlingException",
			"RequestLimitExceeded", "TransactionInProgressException":
		default:
			return ovrlrd.Wrap(ovrlrd.EINTERNAL, "Internal server error", err)
		}
	}
	return ovrlrd.Wrap(ovrlrd.EUNAVAILABLE, "The database is unavailable.", err)
}

// pause sleeps a jittered, growing interval before retry number attempt,
// giving up early when ctx ends.
func pause(ctx context.Context, attempt int) error {
	base := time.Duration(5<<min(attempt, 5)) * time.Millisecond
	t := time.NewTimer(base/2 + rand.N(base))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// reasonCondition is the cancellation reason of an item whose condition
// did not hold.
const reasonCondition = "ConditionalCheckFailed"

// cancelReasons returns why each item of a cancelled transaction failed, or
// nil when err is not a cancelled transaction.
func cancelReasons(err error) []types.CancellationReason {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return nil
	}
	return tce.CancellationReasons
}

// reasonCode returns the code for item i, "" if there is none.
func reasonCode(reasons []types.CancellationReason, i int) string {
	if i >= len(reasons) || reasons[i].Code == nil {
		return ""
	}
	return *reasons[i].Code
}

// retryable reports whether a cancelled transaction lost only to timing
// (another transaction on the same items, or throttling), so the same
// request can succeed later.
func retryable(reasons []types.CancellationReason) bool {
	for i := range reasons {
		switch reasonCode(reasons, i) {
		case "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded":
			return true
		}
	}
	return false
}
