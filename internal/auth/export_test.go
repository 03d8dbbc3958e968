package auth

import (
	"context"

	"github.com/ovrlrd/cloud/internal/audit"
)

// Refresh is the refresh route's two steps in one, CheckRefresh then
// Rotate, for tests that do not limit refreshes in between.
func (s *Service) Refresh(ctx context.Context, authorization string, c audit.Client) (Grant, error) {
	t, err := s.CheckRefresh(ctx, authorization, c)
	if err != nil {
		return Grant{}, err
	}
	return s.Rotate(ctx, t, c)
}
