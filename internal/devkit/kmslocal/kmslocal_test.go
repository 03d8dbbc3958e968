package kmslocal

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/ovrlrd/cloud/internal/devkit/devenv"
)

func TestStartEncryptsAndCloses(t *testing.T) {
	bin, err := Bin()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Start(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !regexp.MustCompile(`^http://127\.0\.0\.1:[0-9]+$`).MatchString(s.Endpoint()) || s.KeyID() == "" {
		t.Fatalf("endpoint %q, key %q", s.Endpoint(), s.KeyID())
	}

	secret := []byte("kmslocal round trip")
	enc, err := s.Client().Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(s.KeyID()), Plaintext: secret})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(enc.CiphertextBlob, secret) {
		t.Fatal("ciphertext holds the plaintext")
	}
	dec, err := s.Client().Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dec.Plaintext, secret) {
		t.Fatalf("decrypted %q", dec.Plaintext)
	}

	s.Close()
	select {
	case <-s.done:
	default:
		t.Fatal("Close returned before the process exited")
	}
	if _, err := os.Stat(s.dir); !os.IsNotExist(err) {
		t.Fatalf("data folder left behind: %v", err)
	}
	s.Close() // a second Close returns at once
	if _, err := s.Client().ListKeys(ctx, &kms.ListKeysInput{}, func(o *kms.Options) { o.RetryMaxAttempts = 1 }); err == nil {
		t.Fatal("the server still answers after Close")
	}
}

func TestStartFailsForAProcessThatExits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "exits")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho cannot listen >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Start(ctx, bin)
	if err == nil || !strings.Contains(err.Error(), "cannot listen") {
		t.Fatalf("Start of a binary that exits at once: %v", err)
	}
}

// The Makefile installs the same local-kms that Bin builds.
func TestMakefilePinsTheSameVersion(t *testing.T) {
	root, err := devenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^LOCAL_KMS_VERSION\s*:=\s*(\S+)$`).FindSubmatch(mk)
	if m == nil || string(m[1]) != Version {
		t.Fatalf("Makefile's LOCAL_KMS_VERSION is %q, kmslocal.Version %q", m, Version)
	}
	if !bytes.Contains(mk, []byte("install "+Module+"@$(LOCAL_KMS_VERSION)")) {
		t.Fatal("Makefile does not install " + Module + "@$(LOCAL_KMS_VERSION)")
	}
}
