package ovrlrd

import "time"

// Environment is an APNs environment.
type Environment string

const (
	EnvSandbox    Environment = "sandbox"
	EnvProduction Environment = "production"
)

// Valid reports whether e is a known APNs environment.
func (e Environment) Valid() bool { return e == EnvSandbox || e == EnvProduction }

// Device is a phone registered for push notifications.
type Device struct {
	UserID      string
	Token       string // lowercase hex, as the app sends it
	Environment Environment
	UpdatedAt   time.Time
}
