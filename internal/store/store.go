// Package store keeps every piece of state in one DynamoDB table, through
// guregu/dynamo. Callers see domain types and domain errors; keys, items and
// driver errors stay inside.
package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/google/uuid"
	"github.com/guregu/dynamo/v2"
	"github.com/guregu/dynamo/v2/dynamodbiface"

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
	// eventTTL is how long a turn's event log is kept.
	eventTTL time.Duration
}

// Options configure a Store.
type Options struct {
	Table     string
	CursorKey []byte
	Now       func() time.Time // nil means time.Now; tests pin it
	// EventTTL is how long a turn's event log is kept; 0 is
	// DefaultEventTTL.
	EventTTL time.Duration
}

// Attribute and index names every item shares. The table itself comes from
// template.yaml, or from the development kit for local runs and tests.
const (
	attrPK    = "PK"
	attrSK    = "SK"
	attrGSIPK = "GSI1PK"
	attrGSISK = "GSI1SK"
	attrTTL   = "ttl"
	indexGSI1 = "GSI1"
	// txAttempts bounds the runs of a transaction that loses races.
	txAttempts = 8
)

// itemKey is the primary key every item starts with.
type itemKey struct {
	PK string `dynamo:"PK"`
	SK string `dynamo:"SK"`
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
	db = dynamo.NewFromIface(oldValuesOnFailure{db.Client()})
	ttl := opts.EventTTL
	if ttl <= 0 {
		ttl = DefaultEventTTL
	}
	return &Store{db: db, table: db.Table(opts.Table), now: now, cursors: cursor.New(opts.CursorKey), eventTTL: ttl}
}

// oldValuesOnFailure asks every transaction for the old values of an update
// whose condition fails, which guregu cannot: touch tells a missing
// conversation from one a concurrent writer moved ahead by them.
type oldValuesOnFailure struct{ dynamodbiface.DynamoDBAPI }

func (c oldValuesOnFailure) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	for _, it := range in.TransactItems {
		if it.Update != nil && it.Update.ConditionExpression != nil {
			it.Update.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
		}
	}
	return c.DynamoDBAPI.TransactWriteItems(ctx, in, optFns...)
}

// Ping checks that the table can be reached.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := s.table.Describe().Run(ctx); err != nil {
		return ovrlrd.Wrap(ovrlrd.EUNAVAILABLE, "The database is unavailable.", fmt.Errorf("describe table: %w", err))
	}
	return nil
}

// nowMillis is the clock at the millisecond resolution everything is stored
// in, so a value read back equals the value written.
func (s *Store) nowMillis() int64 { return s.now().UnixMilli() }

func timeOf(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// sortableMillis renders epoch milliseconds so that string order is time
// order (13 digits last until the year 2286).
func sortableMillis(ms int64) string { return fmt.Sprintf("%013d", max(ms, 0)) }

// isID reports whether s is an id in exactly the form uuid.NewString makes
// (a lowercase UUID v4, the app's id format). Anything
// else cannot name an item, so lookups answer "not found" without a call.
func isID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && u.String() == s
}

// get reads the item at pk, sk into out, strongly consistent: every read
// may follow a write of the same caller. A missing item answers missing.
func (s *Store) get(ctx context.Context, op, pk, sk string, out any, missing error) error {
	err := s.table.Get(attrPK, pk).Range(attrSK, dynamo.Equal, sk).Consistent(true).One(ctx, out)
	switch {
	case errors.Is(err, dynamo.ErrNotFound):
		return missing
	case err != nil:
		return dbError(op, err)
	}
	return nil
}

// written answers a single-item write: failed when its condition did not
// hold (nil: that is fine too), the database's error otherwise.
func written(op string, err, failed error) error {
	switch {
	case err == nil:
		return nil
	case dynamo.IsCondCheckFailed(err):
		return failed
	}
	return dbError(op, err)
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

// errLostRace, as the answer to an item's failed condition, says another
// writer changed the item between a read and this write: the transaction is
// built again from a fresh read.
var errLostRace = errors.New("lost a race")

// runTx runs the transaction build makes until it is written, building it
// again after a pause while it loses races, at most txAttempts times; build
// is given the error of the attempt before, nil the first time. A failed
// condition of item i answers failed[i]; without one, it is the database's
// error. Idempotent: the SDK's resend of a write that landed is not refused
// by the write's own conditions.
func (s *Store) runTx(ctx context.Context, op string, build func(prev error) (*dynamo.WriteTx, error), failed ...error) error {
	return s.runTxOf(ctx, op, func(prev error) (*dynamo.WriteTx, []error, error) {
		tx, err := build(prev)
		return tx, failed, err
	})
}

// runTxOf is runTx for a transaction whose items differ between attempts:
// build returns, with it, what each item's failed condition answers.
func (s *Store) runTxOf(ctx context.Context, op string, build func(prev error) (*dynamo.WriteTx, []error, error)) error {
	var prev error
	for attempt := 0; ; attempt++ {
		tx, failed, err := build(prev)
		if err != nil {
			return err
		}
		if err = tx.Idempotent(true).Run(ctx); err == nil {
			return nil
		}
		reasons := cancelReasons(err)
		// A transaction that lost only to timing (another transaction on the
		// same items, or throttling) can succeed later as it is.
		race := slices.ContainsFunc(reasons, func(r types.CancellationReason) bool {
			return slices.Contains([]string{"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}, aws.ToString(r.Code))
		})
		for i, f := range failed {
			if f != nil && conditionFailed(reasons, i) {
				if f != errLostRace {
					return f
				}
				race = true
			}
		}
		if !race {
			return dbError(op, err)
		}
		if attempt+1 == txAttempts {
			return ovrlrd.Wrap(ovrlrd.EUNAVAILABLE, "The database is busy. Try again.", fmt.Errorf("%s: %w", op, err))
		}
		if err := pause(ctx, attempt); err != nil {
			return dbError(op, err)
		}
		prev = err
	}
}

// pause sleeps a jittered, growing interval before retry number attempt,
// giving up early when ctx ends.
func pause(ctx context.Context, attempt int) error {
	base := time.Duration(5<<min(attempt, 5)) * time.Millisecond
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(base/2 + rand.N(base)):
		return nil
	}
}

// cancelReasons returns why each item of a cancelled transaction failed, or
// nil when err is not a cancelled transaction.
func cancelReasons(err error) []types.CancellationReason {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return nil
	}
	return tce.CancellationReasons
}

// conditionFailed reports whether item i of a cancelled transaction failed
// its condition.
func conditionFailed(reasons []types.CancellationReason, i int) bool {
	return i < len(reasons) && aws.ToString(reasons[i].Code) == "ConditionalCheckFailed"
}
