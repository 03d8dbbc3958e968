package turn

import "time"

// Shorten sets the turn's timings for a test and returns a restore func.
func Shorten(check, ping, save time.Duration) func() {
	oc, op, os := checkEvery, pingEvery, saveMargin
	checkEvery, pingEvery, saveMargin = check, ping, save
	return func() { checkEvery, pingEvery, saveMargin = oc, op, os }
}
