package ovrlrd

import "time"

// User is an account, created at the first sign-in with Apple.
type User struct {
	ID        string
	AppleSub  string
	Email     string // as Apple sent it; may be empty
	CreatedAt time.Time
	UpdatedAt time.Time
}
