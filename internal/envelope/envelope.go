// Package envelope seals small secrets (a user's git access token) under a
// KMS key of the stack by envelope encryption: KMS hands out a fresh AES-256
// data key per secret, the secret is encrypted locally with AES-256-GCM, and
// only the KMS-encrypted data key is kept beside it. The secret can be read
// again only by a caller that KMS lets decrypt the data key, under the same
// encryption context.
//
// A sealed blob is self-describing:
//
//	version (1 byte) | len(edk) (2 bytes, big endian) | edk | nonce (12 bytes) | GCM ciphertext and tag
//
// where edk is the encrypted data key as KMS returned it. The GCM additional
// data is the header (version, length, edk) followed by the encryption
// context, each key and value length-prefixed, keys sorted.
package envelope

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// KMS is what a Sealer asks of AWS KMS; *kms.Client has it.
type KMS interface {
	GenerateDataKey(context.Context, *kms.GenerateDataKeyInput, ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error)
	Decrypt(context.Context, *kms.DecryptInput, ...func(*kms.Options)) (*kms.DecryptOutput, error)
}

var _ KMS = (*kms.Client)(nil)

// ErrMalformed is wrapped by Open's error for a blob that is not one Seal
// made: too short, or of an unknown version.
var ErrMalformed = errors.New("envelope: malformed blob")

const (
	version     = 1
	keySize     = 32              // AES-256
	overhead    = 12 + 16         // nonce and GCM tag
	callTimeout = 5 * time.Second // each KMS call, within the caller's deadline
)

// Sealer seals and opens blobs under one KMS key.
type Sealer struct {
	client KMS
	keyID  string
}

// New returns a Sealer for the KMS key keyID (key ID, ARN or alias).
func New(client KMS, keyID string) *Sealer { return &Sealer{client: client, keyID: keyID} }

// Seal encrypts plaintext under a fresh data key, bound to encCtx: Open
// needs the same context back.
func (s *Sealer) Seal(ctx context.Context, plaintext []byte, encCtx map[string]string) ([]byte, error) {
	callCtx, cancel := context.WithTimeout(ctx, callTimeout)
	out, err := s.client.GenerateDataKey(callCtx, &kms.GenerateDataKeyInput{
		KeyId: &s.keyID, KeySpec: types.DataKeySpecAes256, EncryptionContext: encCtx,
	})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("envelope: kms generate data key: %w", err)
	}
	if out == nil {
		return nil, errors.New("envelope: kms generate data key: no answer")
	}
	defer clear(out.Plaintext)
	edk := out.CiphertextBlob
	if len(out.Plaintext) != keySize || len(edk) == 0 || len(edk) > 0xffff {
		return nil, fmt.Errorf("envelope: kms generate data key: unexpected answer (%d-byte key, %d-byte encrypted key)", len(out.Plaintext), len(edk))
	}
	aead, err := newAEAD(out.Plaintext)
	if err != nil {
		return nil, err
	}
	blob := make([]byte, 0, 3+len(edk)+overhead+len(plaintext))
	blob = append(blob, version)
	blob = binary.BigEndian.AppendUint16(blob, uint16(len(edk)))
	blob = append(blob, edk...)
	// Seal prepends its random 12-byte nonce to the ciphertext.
	return aead.Seal(blob, nil, plaintext, additionalData(blob, encCtx)), nil
}

// Open decrypts a blob Seal made under the same encryption context.
func (s *Sealer) Open(ctx context.Context, blob []byte, encCtx map[string]string) ([]byte, error) {
	header, edk, sealed, err := parse(blob)
	if err != nil {
		return nil, err
	}
	callCtx, cancel := context.WithTimeout(ctx, callTimeout)
	out, err := s.client.Decrypt(callCtx, &kms.DecryptInput{
		CiphertextBlob: edk, KeyId: &s.keyID, EncryptionContext: encCtx,
	})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("envelope: kms decrypt: %w", err)
	}
	if out == nil {
		return nil, errors.New("envelope: kms decrypt: no answer")
	}
	defer clear(out.Plaintext)
	if len(out.Plaintext) != keySize {
		return nil, fmt.Errorf("envelope: kms decrypt: unexpected %d-byte data key", len(out.Plaintext))
	}
	aead, err := newAEAD(out.Plaintext)
	if err != nil {
		return nil, err
	}
	plaintext, err := aead.Open(nil, nil, sealed, additionalData(header, encCtx))
	if err != nil {
		return nil, fmt.Errorf("envelope: open: %w", err)
	}
	return plaintext, nil
}

// parse splits a blob into its header (version, length and edk), the
// encrypted data key, and the nonce-prefixed GCM ciphertext. It never
// panics: the results are sub-slices of blob, bounds checked first.
func parse(blob []byte) (header, edk, sealed []byte, err error) {
	if len(blob) < 3 {
		return nil, nil, nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(blob))
	}
	if blob[0] != version {
		return nil, nil, nil, fmt.Errorf("%w: unknown version %d", ErrMalformed, blob[0])
	}
	n := int(binary.BigEndian.Uint16(blob[1:3]))
	if n == 0 || len(blob)-3-n < overhead {
		return nil, nil, nil, fmt.Errorf("%w: %d bytes for a %d-byte encrypted key", ErrMalformed, len(blob), n)
	}
	return blob[: 3+n : 3+n], blob[3 : 3+n : 3+n], blob[3+n:], nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("envelope: cipher: %w", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("envelope: cipher: %w", err)
	}
	return aead, nil
}

// additionalData is the header, then the encryption context with its keys
// sorted, each key and value prefixed by its 4-byte length, so no two
// contexts encode alike.
func additionalData(header []byte, encCtx map[string]string) []byte {
	aad := append([]byte(nil), header...)
	for _, k := range slices.Sorted(maps.Keys(encCtx)) {
		aad = binary.BigEndian.AppendUint32(aad, uint32(len(k)))
		aad = append(aad, k...)
		aad = binary.BigEndian.AppendUint32(aad, uint32(len(encCtx[k])))
		aad = append(aad, encCtx[k]...)
	}
	return aad
}
