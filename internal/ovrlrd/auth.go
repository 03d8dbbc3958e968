package ovrlrd

// The messages of a refused session token, as the app's contract fixes
// them (always with code EUNAUTHORIZED).
const (
	MsgMissingHeader = "Missing authorization header"
	MsgInvalidToken  = "Invalid token"
	MsgExpiredToken  = "Invalid or expired token"
)
