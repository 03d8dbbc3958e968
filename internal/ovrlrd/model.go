package ovrlrd

import "context"

// ModelGate is how a turn's CLI reaches the model without holding a
// credential: a loopback proxy that adds it, and counts what each session
// used.
type ModelGate interface {
	Open(ctx context.Context) (ModelSession, error)
}

// ModelSession is one CLI run's access to the model. It ends with Close, or
// when the context it was opened with ends.
type ModelSession interface {
	BaseURL() string // what the CLI is told the model API is
	Token() string   // what the CLI is given as its key; worthless once closed
	// Usage is what the upstream answered the session's requests with,
	// priced: the source of a turn's cost, which no tool can forge.
	Usage() Usage
	// Asked is closed once the CLI sent its first model request: from then
	// on it mostly waits for the model.
	Asked() <-chan struct{}
	Close()
}
