package push

import "time"

// Shorten sets the retry backoff for a test and returns a restore func.
func Shorten(b time.Duration) func() {
	old := backoff
	backoff = b
	return func() { backoff = old }
}
