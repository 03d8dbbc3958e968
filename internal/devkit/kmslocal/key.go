package kmslocal

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// Key is make dev's KMS: one AES-256 key kept in make dev's secrets file,
// answering GenerateDataKey and Decrypt in process as KMS does, each data
// key bound to its encryption context. make dev does not run local-kms:
// it takes no listen address and binds every interface, and make dev's
// data (the sealed tokens in DynamoDB Local) outlives the process, so a
// KMS reachable from the network would be one for every sealed token. The
// tests, whose keys die with them, run local-kms and the real client.
type Key struct {
	id   string
	aead cipher.AEAD
}

// NewKey returns a Key named id over a 32-byte secret.
func NewKey(id string, secret []byte) (*Key, error) {
	block, err := aes.NewCipher(secret)
	if err != nil {
		return nil, err
	}
	if len(secret) != 32 {
		return nil, errors.New("kmslocal: the local key must be 32 bytes")
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Key{id: id, aead: aead}, nil
}

// aad binds a data key to the key's id and the encryption context.
func (k *Key) aad(encCtx map[string]string) []byte {
	out := []byte(k.id)
	for _, name := range slices.Sorted(maps.Keys(encCtx)) {
		for _, s := range []string{name, encCtx[name]} {
			out = binary.BigEndian.AppendUint32(out, uint32(len(s)))
			out = append(out, s...)
		}
	}
	return out
}

var errKey = errors.New("kmslocal: not this key's, or another encryption context")

// GenerateDataKey returns a fresh AES-256 data key, and it sealed.
func (k *Key) GenerateDataKey(_ context.Context, in *kms.GenerateDataKeyInput, _ ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	if aws.ToString(in.KeyId) != k.id {
		return nil, errKey
	}
	plain := make([]byte, 32)
	rand.Read(plain)
	nonce := make([]byte, k.aead.NonceSize())
	rand.Read(nonce)
	sealed := k.aead.Seal(nonce, nonce, plain, k.aad(in.EncryptionContext))
	return &kms.GenerateDataKeyOutput{KeyId: in.KeyId, Plaintext: plain, CiphertextBlob: sealed}, nil
}

// Decrypt opens a data key GenerateDataKey sealed under the same context.
func (k *Key) Decrypt(_ context.Context, in *kms.DecryptInput, _ ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	n := k.aead.NonceSize()
	if len(in.CiphertextBlob) < n || (in.KeyId != nil && *in.KeyId != k.id) {
		return nil, errKey
	}
	plain, err := k.aead.Open(nil, in.CiphertextBlob[:n], in.CiphertextBlob[n:], k.aad(in.EncryptionContext))
	if err != nil {
		return nil, errKey
	}
	return &kms.DecryptOutput{KeyId: aws.String(k.id), Plaintext: plain}, nil
}
