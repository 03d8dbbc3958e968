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
	seen := map[string]bool{}
	for i, entry := range strings.Split(s, ",") {
		n := i + 1
		entry = strings.TrimSpace(entry)
		kid, secret, ok := strings.Cut(entry, ":")
		switch {
		case entry == "":
			errs = append(errs, fmt.Sprintf("entry %d is empty", n))
			continue
		case !ok:
			errs = append(errs, fmt.Sprintf("entry %d is not kid:secret", n))
			continue
		case !kidPattern.MatchString(kid):
			errs = append(errs, fmt.Sprintf("entry %d: kid must match %s", n, kidPattern))
			continue
		case seen[kid]:
			errs = append(errs, fmt.Sprintf("entry %d: duplicate kid %q", n, kid))
			continue
		case len(secret) < MinKeyBytes:
			errs = append(errs, fmt.Sprintf("entry %d (kid %q): secret is %d bytes, need at least %d", n, kid, len(secret), MinKeyBytes))
		}
		seen[kid] = true
		ring = append(ring, Key{ID: kid, Secret: NewSecret(secret)})
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "; "))
	}
	return ring, nil
}
