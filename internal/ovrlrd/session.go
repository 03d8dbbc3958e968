package ovrlrd

import "time"

// LoginSession is the server-side state behind a session token. A token is
// accepted only while its session is live and its generation is current.
type LoginSession struct {
	ID     string
	UserID string
	// Email (the address Apple verified at sign-in, possibly empty) and
	// AppleSub are the user's identity when the session began, so the
	// sign-up allow-list can be checked again on every request without
	// reading the profile.
	Email      string
	AppleSub   string
	Generation int
	// PreviousGeneration and RotatedAt let a client that lost the response to
	// a refresh retry it for a short while without tripping reuse detection.
	PreviousGeneration int
	RotatedAt          time.Time
	Revoked            bool
	CreatedAt          time.Time
	ExpiresAt          time.Time
}
