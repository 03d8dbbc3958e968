package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// apiKey checks X-API-Key. Configuration refuses an empty key outside the
// local stage, so an unset key can never open a deployed API.
type apiKey struct {
	sum [32]byte
	set bool
}

func newAPIKey(key string) apiKey {
	if key == "" {
		return apiKey{}
	}
	return apiKey{sum: sha256.Sum256([]byte(key)), set: true}
}

// check returns nil when the request may pass. Hashing first makes the
// comparison constant-time whatever the lengths.
func (k apiKey) check(r *http.Request) error {
	if !k.set {
		return nil
	}
	got, present := r.Header["X-Api-Key"]
	if !present || len(got) == 0 || got[0] == "" {
		return ovrlrd.Errorf(ovrlrd.EUNAUTHORIZED, "Missing API key")
	}
	sum := sha256.Sum256([]byte(got[0]))
	if subtle.ConstantTimeCompare(sum[:], k.sum[:]) != 1 {
		return ovrlrd.Errorf(ovrlrd.EUNAUTHORIZED, "Invalid API key")
	}
	return nil
}

// presentAndWrong is the health check's rule: monitoring without a key gets
// through, and the app learns that a key it typed is wrong.
func (k apiKey) presentAndWrong(r *http.Request) bool {
	if _, present := r.Header["X-Api-Key"]; !present {
		return false
	}
	return k.check(r) != nil
}
