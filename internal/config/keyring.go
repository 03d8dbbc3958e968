package config

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// MinKeyBytes is the shortest HMAC secret accepted: 256 bits for HS256.
const MinKeyBytes = 32

var kidPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// Key is one signing key of a KeyRing.
type Key struct {
	ID     string // the JWT "kid"
	Secret Secret
}

// KeyRing holds the JWT keys. The first signs; all verify, so a key can be
// rotated in front of the old one and the old one dropped once its tokens
// have expired.
type KeyRing []Key

// Signing returns the key new tokens are signed with.
func (r KeyRing) Signing() Key {
	if len(r) == 0 {
		return Key{}
	}
	return r[0]
}

// Lookup returns the key with the given kid.
func (r KeyRing) Lookup(id string) (Key, bool) {
	for _, k := range r {
		if k.ID == id {
			return k, true
		}
	}
	return Key{}, false
}

// ParseKeyRing parses comma-separated kid:secret entries. Its errors never
// quote a secret, nor a kid that failed validation (it may be a secret typed
// without one).
func ParseKeyRing(s string) (KeyRing, error) {
	var ring KeyRing
	var errs []string
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		kid, secret, ok := strings.Cut(entry, ":")
		_, dup := ring.Lookup(kid) // ring holds every earlier entry
		why := ""
		switch {
		case entry == "":
			why = " is empty"
		case !ok:
			why = " is not kid:secret"
		case !kidPattern.MatchString(kid):
			why = ": kid must match " + kidPattern.String()
		case dup:
			why = fmt.Sprintf(": duplicate kid %q", kid)
		case len(secret) < MinKeyBytes:
			why = fmt.Sprintf(" (kid %q): secret is %d bytes, need at least %d", kid, len(secret), MinKeyBytes)
		}
		if why != "" {
			errs = append(errs, fmt.Sprintf("entry %d%s", i+1, why))
		}
		ring = append(ring, Key{ID: kid, Secret: NewSecret(secret)})
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "; "))
	}
	return ring, nil
}
