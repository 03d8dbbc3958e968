package store

import (
	"context"

	"github.com/google/uuid"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// EmptyConversation creates a conversation of userID with no message. The
// store opens a conversation only with a turn's first message; tests of
// lists, paging and deletion want to choose every message themselves.
func (s *Store) EmptyConversation(ctx context.Context, userID string) (ovrlrd.Conversation, error) {
	conv := newConvItem(userID, uuid.NewString(), s.nowMillis())
	if err := s.table.Put(conv).If("attribute_not_exists($)", attrPK).Run(ctx); err != nil {
		return ovrlrd.Conversation{}, dbError("create conversation", err)
	}
	return conv.conversation(), nil
}

// Limits the tests reach for.
const (
	MaxPageLimit    = maxPageLimit
	MaxContentBytes = maxContentBytes
)
