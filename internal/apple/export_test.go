package apple

import "time"

// WithWindows shortens the background refresh interval and the unknown-kid
// refresh window, so tests can watch them pass.
func WithWindows(o Options, refreshEvery, unknownKIDEvery time.Duration) Options {
	o.refreshEvery, o.unknownKIDEvery = refreshEvery, unknownKIDEvery
	return o
}
