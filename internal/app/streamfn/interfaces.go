package streamfn

import (
	"github.com/ovrlrd/cloud/internal/api"
	"github.com/ovrlrd/cloud/internal/envelope"
	"github.com/ovrlrd/cloud/internal/imports"
	"github.com/ovrlrd/cloud/internal/project"
	"github.com/ovrlrd/cloud/internal/push"
	"github.com/ovrlrd/cloud/internal/store"
	"github.com/ovrlrd/cloud/internal/turn"
	"github.com/ovrlrd/cloud/internal/watch"
	"github.com/ovrlrd/cloud/internal/workspace"
)

// As in package app: each implementation against its consumer's interface.
var (
	_ api.Turns        = (*turn.Service)(nil)
	_ turn.Store       = (*store.Store)(nil)
	_ turn.Workspace   = (*workspace.Store)(nil)
	_ push.Devices     = (*store.Store)(nil)
	_ turn.Projects    = (*project.Service)(nil)
	_ imports.Store    = (*store.Store)(nil)
	_ imports.Files    = (*workspace.Store)(nil)
	_ imports.Projects = (*store.Store)(nil)
	_ api.Imports      = (*imports.Service)(nil)
	_ project.Store    = (*store.Store)(nil)
	_ project.Sealer   = (*envelope.Sealer)(nil)
	_ project.Files    = (*workspace.Store)(nil)
	_ api.Projects     = (*project.Service)(nil)
	_ api.Watches      = (*watch.Service)(nil)
	_ watch.Store      = (*store.Store)(nil)
)
