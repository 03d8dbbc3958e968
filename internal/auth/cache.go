package auth

import (
	"maps"
	"sync"
	"time"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// sessionCache lets an instance trust a session it has read for a short
// while, so a busy user costs one read per interval instead of one per
// request. The interval bounds how late a logout or a deletion made on
// another instance takes effect here.
type sessionCache struct {
	mu      sync.Mutex
	ttl     time.Duration
	entries map[string]cached
}

// maxCached bounds the cache's memory.
const maxCached = 10000

type cached struct {
	s  ovrlrd.LoginSession
	at time.Time
}

// get returns sid's session if it was read less than ttl ago; without ok
// the session is not to be used.
func (c *sessionCache) get(sid string, now time.Time) (ovrlrd.LoginSession, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[sid]
	return e.s, ok && now.Sub(e.at) < c.ttl
}

func (c *sessionCache) put(s ovrlrd.LoginSession, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= maxCached {
		// Drop stale entries; if all are fresh, drop everything rather than
		// grow without bound. Either way the cost is one read per session.
		maps.DeleteFunc(c.entries, func(_ string, e cached) bool { return now.Sub(e.at) >= c.ttl })
		if len(c.entries) >= maxCached {
			clear(c.entries)
		}
	}
	c.entries[s.ID] = cached{s: s, at: now}
}

func (c *sessionCache) forget(sid string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, sid)
}
