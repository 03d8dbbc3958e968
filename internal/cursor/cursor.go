// Package cursor turns a position in a list into an opaque string that
// clients echo back. Cursors are signed: a client can hold one, but cannot
// forge one, alter one, or replay one on a different list.
package cursor

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// MaxLen caps the encoded length Decode accepts, so a huge query parameter
// costs nothing to refuse.
const MaxLen = 1024

// macLen is the length of the truncated HMAC-SHA256 tag: 128 bits is far
// beyond what an online forger can guess.
const macLen = 16

// Codec encodes and decodes cursors under one key.
type Codec struct {
	key []byte
}

// New returns a Codec signing with key. Every instance must share the key so
// a cursor issued by one is accepted by another.
func New(key []byte) Codec {
	return Codec{key: append([]byte(nil), key...)}
}

// Encode returns v as a cursor valid only for scope. The alphabet is
// URL-safe base64 without padding, so it never contains '+', '/' or '=',
// which the app or a query parser would mangle.
func (c Codec) Encode(scope string, v any) string {
	payload, err := json.Marshal(v)
	if err != nil {
		// Callers encode their own plain structs; failing here is a bug.
		panic(fmt.Sprintf("cursor: encode %T: %v", v, err))
	}
	buf := append(c.mac(scope, payload), payload...)
	return base64.RawURLEncoding.EncodeToString(buf)
}

// Decode checks that s was issued for scope and unmarshals its payload into
// v. Every failure is the same EINVALID, so a prober learns nothing.
func (c Codec) Decode(scope, s string, v any) error {
	if len(s) > MaxLen {
		return ovrlrd.Errorf(ovrlrd.EINVALID, "Invalid cursor.")
	}
	// Strict refuses non-zero trailing bits, so each cursor has exactly one
	// spelling and no edited character can decode to the same bytes.
	buf, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(buf) <= macLen || !hmac.Equal(buf[:macLen], c.mac(scope, buf[macLen:])) ||
		json.Unmarshal(buf[macLen:], v) != nil {
		return ovrlrd.Errorf(ovrlrd.EINVALID, "Invalid cursor.")
	}
	return nil
}

func (c Codec) mac(scope string, payload []byte) []byte {
	m := hmac.New(sha256.New, c.key)
	// The scope is length-prefixed so no (scope, payload) pair can be
	// re-split into another that yields the same bytes.
	fmt.Fprintf(m, "%d:%s", len(scope), scope)
	m.Write(payload)
	return m.Sum(nil)[:macLen]
}
