package chatfn

import (
	"github.com/ovrlrd/cloud/internal/api"
	"github.com/ovrlrd/cloud/internal/auth"
)

// As in package app: each implementation against its consumer's interface.
var (
	_ api.TurnStarter = lambdaStarter{}
	_ auth.Finisher   = lambdaFinisher{}
	_ auth.Finisher   = localFinisher{}
)
