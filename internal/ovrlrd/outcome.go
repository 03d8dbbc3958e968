package ovrlrd

// OutcomeKind is how a turn ended. Its value is the type of the terminal
// event the app receives, and what the conversation keeps.
type OutcomeKind string

// The ways a turn ends.
const (
	OutcomeComplete           OutcomeKind = "complete"
	OutcomePermissionRequired OutcomeKind = "permission_required"
	OutcomeNoResponse         OutcomeKind = "no_response"
	OutcomeError              OutcomeKind = "error"
)
