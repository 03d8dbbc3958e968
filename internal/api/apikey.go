package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// APIKey checks X-API-Key: the one check of it, which make dev's own routes
// use too. Configuration refuses an empty key outside the local stage, so
// an unset key can never open a deployed API.
type APIKey []byte // the key's SHA-256; nil when no key is set

// NewAPIKey is the check of key; an empty key lets every request pass.
func NewAPIKey(key string) APIKey {
	if key == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

// Check returns nil when the request may pass. Hashing first makes the
// comparison constant-time whatever the lengths.
func (k APIKey) Check(r *http.Request) error {
	if k == nil {
		return nil
	}
	got := r.Header.Get("X-Api-Key")
	if got == "" {
		return ovrlrd.Errorf(ovrlrd.EUNAUTHORIZED, "Missing API key")
	}
	sum := sha256.Sum256([]byte(got))
	if subtle.ConstantTimeCompare(sum[:], k) != 1 {
		return ovrlrd.Errorf(ovrlrd.EUNAUTHORIZED, "Invalid API key")
	}
	return nil
}
