package watch

import "time"

// SetTimings sets how often a watcher polls the log and asks whether the
// turn still runs, how often it pings, and the margin it keeps before its
// context's deadline; it returns a restore func.
func SetTimings(poll, check, ping, margin time.Duration) func() {
	op, oq, oc, oi, om := pollEvery, quietPollEvery, checkEvery, pingEvery, endMargin
	pollEvery, quietPollEvery, checkEvery, pingEvery, endMargin = poll, poll, check, ping, margin
	return func() { pollEvery, quietPollEvery, checkEvery, pingEvery, endMargin = op, oq, oc, oi, om }
}
