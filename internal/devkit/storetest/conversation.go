package storetest

import (
	"context"
	"time"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/store"
)

// NewConversation gives userID a conversation opened by the user message
// first and no turn running: what a turn that started and ended leaves,
// without its answer. It goes through the store, as the app's turns do.
func NewConversation(ctx context.Context, s *store.Store, userID, first string) (ovrlrd.Conversation, ovrlrd.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, rawTimeout)
	defer cancel()
	holder := "storetest-" + randomHex(6)
	c, m, err := s.StartTurn(ctx, ovrlrd.TurnStart{
		UserID: userID, Holder: holder, Lease: time.Minute,
		Message: ovrlrd.NewMessage{Role: ovrlrd.RoleUser, Content: first},
	})
	if err != nil {
		return ovrlrd.Conversation{}, ovrlrd.Message{}, err
	}
	return c, m, s.ReleaseRun(ctx, c.ID, holder)
}
