package store

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// EnsureTable creates the Store's table if it does not exist yet. Only local
// runs call it; in AWS the table belongs to the stack.
func (s *Store) EnsureTable(ctx context.Context) error {
	_, err := s.table.Describe().Run(ctx)
	var missing *types.ResourceNotFoundException
	if errors.As(err, &missing) {
		return CreateTable(ctx, s.db, s.table.Name())
	}
	return err
}
