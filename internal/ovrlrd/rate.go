package ovrlrd

import "time"

// RateLimit is an allowance of N requests per Window for Key, shared by
// every instance. A request is counted in a write of its own, or inside the
// transaction of what it writes, so that it costs no round trip of its own.
type RateLimit struct {
	Key    string
	N      int
	Window time.Duration // whole seconds, at least one
}

// Valid reports whether the limit can count anything.
func (l RateLimit) Valid() bool {
	return l.Key != "" && l.N >= 1 && l.Window >= time.Second
}

// Start is the fixed window that holds now, in epoch seconds. Windows are
// aligned on the epoch, not on first use, so finding one needs no read.
func (l RateLimit) Start(now time.Time) int64 {
	secs := int64(l.Window / time.Second)
	return now.Unix() / secs * secs
}

// Reset is when the window that holds now ends.
func (l RateLimit) Reset(now time.Time) time.Time {
	return time.Unix(l.Start(now)+int64(l.Window/time.Second), 0).UTC()
}

// Decide is the decision for a request the window holding now allowed or
// refused, count requests in it so far.
func (l RateLimit) Decide(now time.Time, allowed bool, count int) RateDecision {
	d := RateDecision{Allowed: allowed, Limit: l.N, Reset: l.Reset(now)}
	if allowed {
		d.Remaining = max(l.N-count, 0)
	}
	return d
}

// RateDecision is the outcome of counting one request against a limit.
type RateDecision struct {
	Allowed   bool
	Limit     int
	Remaining int
	Reset     time.Time
}

// ErrRateLimited refuses a request whose limit is spent for now.
var ErrRateLimited = Errorf(ERATELIMIT, "Too many requests. Please slow down.")
