package envelope

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// answers is a KMS whose answers each test chooses.
type answers struct {
	generate func() *kms.GenerateDataKeyOutput
	decrypt  func(edk []byte) *kms.DecryptOutput
	decrypts [][]byte // the encrypted data keys Decrypt was asked for
}

func (a *answers) GenerateDataKey(context.Context, *kms.GenerateDataKeyInput, ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	return a.generate(), nil
}

func (a *answers) Decrypt(_ context.Context, in *kms.DecryptInput, _ ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	a.decrypts = append(a.decrypts, bytes.Clone(in.CiphertextBlob))
	return a.decrypt(in.CiphertextBlob), nil
}

// noPanic runs f, turning a panic into an error.
func noPanic(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return f()
}

// An answer of KMS without error but without the data key, or with one of
// another length, is an error, never a panic nor a seal under a bad key.
func TestUnexpectedKMSAnswersAreErrors(t *testing.T) {
	ctx := context.Background()
	key := func(n int) []byte { return bytes.Repeat([]byte{7}, n) }
	for name, out := range map[string]*kms.GenerateDataKeyOutput{
		"no answer":             nil,
		"nil key":               {CiphertextBlob: stubEDK},
		"nil encrypted key":     {Plaintext: key(keySize)},
		"empty encrypted key":   {Plaintext: key(keySize), CiphertextBlob: []byte{}},
		"16-byte key":           {Plaintext: key(16), CiphertextBlob: stubEDK},
		"33-byte key":           {Plaintext: key(33), CiphertextBlob: stubEDK},
		"encrypted key too big": {Plaintext: key(keySize), CiphertextBlob: make([]byte, 0x10000)},
	} {
		sealer := New(&answers{generate: func() *kms.GenerateDataKeyOutput { return out }}, "k")
		err := noPanic(func() error {
			blob, err := sealer.Seal(ctx, []byte("ghp_x"), nil)
			if err == nil {
				return fmt.Errorf("sealed %x", blob)
			}
			return nil
		})
		if err != nil {
			t.Errorf("GenerateDataKey %s: %v", name, err)
		}
	}

	blob, err := New(&stub{}, "stub-key").Seal(ctx, []byte("ghp_x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]*kms.DecryptOutput{
		"no answer":   nil,
		"nil key":     {},
		"empty key":   {Plaintext: []byte{}},
		"16-byte key": {Plaintext: stubKey[:16]},
		"33-byte key": {Plaintext: append(bytes.Clone(stubKey), 0x42)},
	} {
		sealer := New(&answers{decrypt: func([]byte) *kms.DecryptOutput { return out }}, "k")
		err := noPanic(func() error {
			got, err := sealer.Open(ctx, blob, nil)
			if err == nil {
				return fmt.Errorf("opened %q", got)
			}
			return nil
		})
		if err != nil {
			t.Errorf("Decrypt %s: %v", name, err)
		}
	}
}

// The encrypted data key is bound by GCM itself, not only by KMS: another
// encrypted data key that KMS decrypts to the very same data key does not
// open the blob, because the header that holds it is additional data.
func TestGCMBindsTheEncryptedDataKey(t *testing.T) {
	ctx := context.Background()
	encCtx := map[string]string{"user": "u-1"}
	edkA := []byte("encrypted-data-key-A")
	for name, edkB := range map[string][]byte{
		"same length":    []byte("encrypted-data-key-B"),
		"another length": []byte("another-encrypted-data-key"),
	} {
		t.Run(name, func(t *testing.T) {
			fake := &answers{
				generate: func() *kms.GenerateDataKeyOutput {
					return &kms.GenerateDataKeyOutput{Plaintext: bytes.Clone(stubKey), CiphertextBlob: bytes.Clone(edkA)}
				},
				// Both encrypted data keys are the same data key.
				decrypt: func(edk []byte) *kms.DecryptOutput {
					if bytes.Equal(edk, edkA) || bytes.Equal(edk, edkB) {
						return &kms.DecryptOutput{Plaintext: bytes.Clone(stubKey)}
					}
					return nil
				},
			}
			sealer := New(fake, "k")
			blob, err := sealer.Seal(ctx, []byte("ghp_bound"), encCtx)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := sealer.Open(ctx, blob, encCtx); err != nil || string(got) != "ghp_bound" {
				t.Fatalf("the intact blob: %q, %v", got, err)
			}
			header, edk, sealed, err := parse(blob)
			if err != nil || !bytes.Equal(edk, edkA) {
				t.Fatalf("parse: %x, %v", edk, err)
			}
			// The blob with edkB in place of edkA, all else as sealed.
			swapped := append([]byte{version, 0, byte(len(edkB))}, edkB...)
			swapped = append(swapped, sealed...)
			fake.decrypts = nil
			got, err := sealer.Open(ctx, swapped, encCtx)
			if err == nil {
				t.Fatalf("opened %q under another encrypted data key", got)
			}
			// KMS was asked for edkB, gave the same data key, and GCM refused.
			if len(fake.decrypts) != 1 || !bytes.Equal(fake.decrypts[0], edkB) || !strings.HasPrefix(err.Error(), "envelope: open:") {
				t.Fatalf("failed elsewhere than GCM: asked for %q, %v", fake.decrypts, err)
			}
			// With the original header as additional data, the same key and
			// ciphertext open: the header alone made the difference.
			if got, err := newAEADOpen(header, sealed, encCtx); err != nil || string(got) != "ghp_bound" {
				t.Fatalf("the original header: %q, %v", got, err)
			}
		})
	}
}
