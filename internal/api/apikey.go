package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// apiKey checks X-API-Key. Configuration refuses an empty key outside the
// local stage, so an unset key can never open a deployed API.
type apiKey []byte // the key's SHA-256; nil when no key is set

func newAPIKey(key string) apiKey {
	if key == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

// check returns nil when the request may pass. Hashing first makes the
// comparison constant-time whatever the lengths.
func (k apiKey) check(r *http.Request) error {
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
