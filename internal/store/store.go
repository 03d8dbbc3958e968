// Package store keeps every piece of state in one DynamoDB table, through
// guregu/dynamo. Callers see domain types and domain errors; keys, items and
// driver errors stay inside.
package store

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// Store is the table, seen through the domain.
type Store struct {
	db    *dynamo.DB
	table dynamo.Table
	now   func() time.Time
	// cursorKey signs cursors so a forged or corrupted one is refused.
	cursorKey []byte
}

// Options configure a Store.
type Options struct {
	Table     string
	CursorKey []byte
	// Now is the clock; nil means time.Now. Tests pin it.
	Now func() time.Time
}

// NewDB returns a DynamoDB handle. endpoint is empty in AWS and points at
// DynamoDB Local otherwise.
func NewDB(cfg aws.Config, endpoint string) *dynamo.DB {
	return dynamo.New(cfg, func(o *dynamodb.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
			// DynamoDB Local does not send the CRC32 header the SDK checks.
			o.DisableValidateResponseChecksum = true
		}
	})
}

// New returns a Store over an existing table.
func New(db *dynamo.DB, opts Options) *Store {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, table: db.Table(opts.Table), now: now, cursorKey: opts.CursorKey}
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
