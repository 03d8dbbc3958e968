package app

import (
	"github.com/ovrlrd/cloud/internal/api"
	"github.com/ovrlrd/cloud/internal/auth"
	"github.com/ovrlrd/cloud/internal/push"
	"github.com/ovrlrd/cloud/internal/store"
	"github.com/ovrlrd/cloud/internal/turn"
	"github.com/ovrlrd/cloud/internal/workspace"
)

// What this wiring hands each consumer satisfies the interface the
// consumer declares, in domain types: checked when this package compiles.
var (
	_ api.Conversations = (*store.Store)(nil)
	_ api.Devices       = (*store.Store)(nil)
	_ api.Limiter       = (*store.Store)(nil)
	_ api.Pinger        = (*store.Store)(nil)
	_ api.Runs          = (*store.Store)(nil)
	_ api.Turns         = (*turn.Service)(nil)
	_ api.TurnStarter   = lambdaStarter{}
	_ api.TurnStarter   = localStarter{}
	_ auth.Store        = (*store.Store)(nil)
	_ turn.Store        = (*store.Store)(nil)
	_ turn.Workspace    = (*workspace.Store)(nil)
	_ push.Devices      = (*store.Store)(nil)
)
