package watch

import "time"

// SetTimings sets how often a watcher polls the log and asks whether the
// turn still runs, how often it pings, and the margin it keeps before its
// context's deadline; it returns a restore func.
func SetTimings(poll, check, ping, margin time.Duration) func() {
	op, oc, oi, om := pollEvery, checkEvery, pingEvery, endMargin
	pollEvery, checkEvery, pingEvery, endMargin = poll, check, ping, margin
	return func() { pollEvery, checkEvery, pingEvery, endMargin = op, oc, oi, om }
}

// SetReadTimeout sets the bound on one read of the table; it returns a
// restore func.
func SetReadTimeout(d time.Duration) func() {
	old := readTimeout
	readTimeout = d
	return func() { readTimeout = old }
}
