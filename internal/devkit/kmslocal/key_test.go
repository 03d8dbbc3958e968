package kmslocal_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"

	"github.com/ovrlrd/cloud/internal/devkit/kmslocal"
	"github.com/ovrlrd/cloud/internal/envelope"
)

// make dev's key seals and opens through the envelope as KMS does: bound
// to the encryption context and to the key.
func TestKeySealsLikeKMS(t *testing.T) {
	ctx := context.Background()
	secret := make([]byte, 32)
	rand.Read(secret)
	key, err := kmslocal.NewKey("local", secret)
	if err != nil {
		t.Fatal(err)
	}
	s := envelope.New(key, "local")
	enc := map[string]string{"purpose": "test", "projectId": "p1"}
	blob, err := s.Seal(ctx, []byte("ghp_token"), enc)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Open(ctx, blob, enc); err != nil || !bytes.Equal(got, []byte("ghp_token")) {
		t.Fatalf("open: %q, %v", got, err)
	}
	if _, err := s.Open(ctx, blob, map[string]string{"purpose": "test", "projectId": "p2"}); err == nil {
		t.Fatal("opened under another encryption context")
	}
	other := make([]byte, 32)
	rand.Read(other)
	otherKey, err := kmslocal.NewKey("local", other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := envelope.New(otherKey, "local").Open(ctx, blob, enc); err == nil {
		t.Fatal("opened with another key")
	}
	if _, err := envelope.New(key, "elsewhere").Seal(ctx, []byte("x"), enc); err == nil {
		t.Fatal("sealed under another key id")
	}
	if _, err := kmslocal.NewKey("local", secret[:16]); err == nil {
		t.Fatal("a 16-byte key was taken")
	}
}
