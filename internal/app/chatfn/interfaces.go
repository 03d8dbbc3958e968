package chatfn

import (
	"github.com/ovrlrd/cloud/internal/api"
	"github.com/ovrlrd/cloud/internal/auth"
)

// As in package app: each implementation against its consumer's interface.
var (
	_ api.TurnStarter = lambdaFunction{}
	_ auth.Finisher   = lambdaFunction{}
)
