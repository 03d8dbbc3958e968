package config

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// Sessions governs the app's session tokens.
type Sessions struct {
	TTL time.Duration // lifetime of a token; the app reads it as expiresIn
	// RefreshGrace is how long past expiry a token may still be refreshed.
	// Never above MaxRefreshGrace: the old server's seven days let a stolen
	// token live a week.
	RefreshGrace time.Duration
	// CheckInterval is how long an instance may trust a session it has
	// checked; logout and deletion take effect everywhere within it.
	CheckInterval  time.Duration
	AuditRetention time.Duration
}

// MaxRefreshGrace caps Sessions.RefreshGrace.
const MaxRefreshGrace = 4 * time.Hour

// Limit is a fixed-window rate limit: N requests per Window.
type Limit struct {
	N      int
	Window time.Duration
}

// Limits are the per-client rate limits, enforced across instances.
type Limits struct {
	Auth  Limit // per address on POST /auth, per session on refresh, per user on logout and deletion
	Read  Limit // per user, on GET routes
	Write Limit // per user, on other authenticated routes
	Turn  Limit // per user, on Claude turns
}

var limitPattern = regexp.MustCompile(`^([0-9]{1,6})/([0-9]+[smh])$`)

// limit reads "N/window", e.g. 120/1m. Windows are whole seconds, from one
// second to a day.
func (r *reader) limit(name string, def Limit) Limit {
	return parsed(r, name, def, func(v string) (Limit, error) {
		m := limitPattern.FindStringSubmatch(v)
		if m == nil {
			return def, fmt.Errorf("%q is not N/window (e.g. 120/1m)", v)
		}
		n, _ := strconv.Atoi(m[1])
		w, err := time.ParseDuration(m[2])
		if err != nil || n < 1 || w < time.Second || w > 24*time.Hour {
			return def, fmt.Errorf("%q is out of range (N at least 1, window 1s to 24h)", v)
		}
		return Limit{N: n, Window: w}, nil
	})
}
