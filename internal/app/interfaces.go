package app

import (
	"github.com/ovrlrd/cloud/internal/api"
	"github.com/ovrlrd/cloud/internal/apple"
	"github.com/ovrlrd/cloud/internal/audit"
	"github.com/ovrlrd/cloud/internal/auth"
	"github.com/ovrlrd/cloud/internal/store"
)

// Every implementation this wiring hands a consumer, against the interface
// the consumer declares in domain types: a mismatch fails here, at the
// type, not at whichever assignment happens to use it.
var (
	_ api.Conversations = (*store.Store)(nil)
	_ api.Devices       = (*store.Store)(nil)
	_ api.Limiter       = (*store.Store)(nil)
	_ api.Pinger        = (*store.Store)(nil)
	_ api.ProjectLookup = (*store.Store)(nil)
	_ auth.Store        = (*store.Store)(nil)
	_ auth.Verifier     = (*apple.Verifier)(nil)
	_ audit.Writer      = (*store.Store)(nil)
)
