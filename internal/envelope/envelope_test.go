package envelope

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/ovrlrd/cloud/internal/devkit/kmslocal"
)

func TestMain(m *testing.M) {
	code := m.Run()
	kmslocal.CloseShared() // fuzzing never starts it
	os.Exit(code)
}

// recorder passes calls on to a KMS and keeps the plaintext data keys it
// handed out: the slices themselves, to see them zeroed, and copies.
type recorder struct {
	KMS
	mu     sync.Mutex
	given  [][]byte
	copies [][]byte
}

func (r *recorder) GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, opts ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	out, err := r.KMS.GenerateDataKey(ctx, in, opts...)
	if err == nil {
		r.mu.Lock()
		r.given = append(r.given, out.Plaintext)
		r.copies = append(r.copies, bytes.Clone(out.Plaintext))
		r.mu.Unlock()
	}
	return out, err
}

func testContext() map[string]string {
	return map[string]string{"purpose": "git-token", "user": "u-123", "host": "github.com"}
}

func TestSealOpenRoundTrip(t *testing.T) {
	s := kmslocal.Shared(t)
	rec := &recorder{KMS: s.Client()}
	sealer := New(rec, s.KeyID())
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		plaintext []byte
		encCtx    map[string]string
	}{
		{"token", []byte("ghp_abcdefghijklmnopqrstuvwxyz0123456789"), testContext()},
		{"empty", []byte{}, testContext()},
		{"no context", []byte("glpat-0123456789abcdef"), nil},
		{"long", bytes.Repeat([]byte("secret-"), 1000), map[string]string{"user": "u-9"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blob, err := sealer.Seal(ctx, tc.plaintext, tc.encCtx)
			if err != nil {
				t.Fatal(err)
			}
			if blob[0] != version {
				t.Fatalf("version byte %d", blob[0])
			}
			if len(tc.plaintext) > 0 && bytes.Contains(blob, tc.plaintext) {
				t.Fatal("the blob holds the plaintext")
			}
			rec.mu.Lock()
			given, key := rec.given[len(rec.given)-1], rec.copies[len(rec.copies)-1]
			rec.mu.Unlock()
			if bytes.Contains(blob, key) {
				t.Fatal("the blob holds the plaintext data key")
			}
			if !bytes.Equal(given, make([]byte, len(given))) {
				t.Fatal("Seal left the plaintext data key in memory")
			}
			got, err := sealer.Open(ctx, blob, tc.encCtx)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.plaintext) {
				t.Fatalf("opened %q, sealed %q", got, tc.plaintext)
			}
			again, err := sealer.Seal(ctx, tc.plaintext, tc.encCtx)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(again, blob) {
				t.Fatal("two seals of one plaintext are alike")
			}
		})
	}
}

func TestOpenWithAnotherContextFails(t *testing.T) {
	s := kmslocal.Shared(t)
	sealer := New(s.Client(), s.KeyID())
	ctx := context.Background()
	secret := []byte("ghp_contextboundsecret")
	blob, err := sealer.Seal(ctx, secret, testContext())
	if err != nil {
		t.Fatal(err)
	}
	other := func(change func(map[string]string)) map[string]string {
		c := testContext()
		change(c)
		return c
	}
	for name, encCtx := range map[string]map[string]string{
		"another user":  other(func(c map[string]string) { c["user"] = "u-124" }),
		"a key more":    other(func(c map[string]string) { c["extra"] = "" }),
		"a key less":    other(func(c map[string]string) { delete(c, "host") }),
		"case of a key": other(func(c map[string]string) { delete(c, "user"); c["User"] = "u-123" }),
		"none":          nil,
	} {
		got, err := sealer.Open(ctx, blob, encCtx)
		if err == nil {
			t.Errorf("%s: opened %q", name, got)
			continue
		}
		if strings.Contains(err.Error(), string(secret)) {
			t.Errorf("%s: the error shows the plaintext: %v", name, err)
		}
	}
}

// GCM binds the context by itself, even with a KMS that ignores it (the
// stub), and contexts alike as key=value pairs do not share additional data.
func TestGCMBindsTheContext(t *testing.T) {
	sealer := New(&stub{}, "stub-key")
	ctx := context.Background()
	blob, err := sealer.Seal(ctx, []byte("ghp_x"), map[string]string{"a=b": "c"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sealer.Open(ctx, blob, map[string]string{"a=b": "c"}); err != nil {
		t.Fatal(err)
	}
	for _, other := range []map[string]string{{"a": "b=c"}, {"a=b": "c", "d": ""}, nil} {
		if _, err := sealer.Open(ctx, blob, other); err == nil {
			t.Errorf("opened under %v", other)
		}
	}
	// The version is bound too: a blob of version 2, were it parsed, fails.
	header, _, sealed, err := parse(blob)
	if err != nil {
		t.Fatal(err)
	}
	v2 := append([]byte{2}, header[1:]...)
	if _, err := newAEADOpen(v2, sealed, map[string]string{"a=b": "c"}); err == nil {
		t.Error("opened with another version in the header")
	}
}

func newAEADOpen(header, sealed []byte, encCtx map[string]string) ([]byte, error) {
	aead, err := newAEAD(stubKey)
	if err != nil {
		return nil, err
	}
	return aead.Open(nil, nil, sealed, additionalData(header, encCtx))
}

func TestOpenFailsForAnyFlippedByte(t *testing.T) {
	s := kmslocal.Shared(t)
	sealer := New(s.Client(), s.KeyID())
	ctx := context.Background()
	secret := []byte("ghp_flipme")
	blob, err := sealer.Seal(ctx, secret, testContext())
	if err != nil {
		t.Fatal(err)
	}
	for i := range blob {
		for _, bit := range []byte{0x01, 0x80} {
			bad := bytes.Clone(blob)
			bad[i] ^= bit
			if got, err := sealer.Open(ctx, bad, testContext()); err == nil {
				t.Fatalf("byte %d of %d flipped (%#x): opened %q", i, len(blob), bit, got)
			}
		}
	}
	for _, bad := range [][]byte{blob[:len(blob)-1], append(bytes.Clone(blob), 0)} {
		if _, err := sealer.Open(ctx, bad, testContext()); err == nil {
			t.Fatalf("a %d-byte blob (sealed %d) opened", len(bad), len(blob))
		}
	}
	// Another blob's encrypted data key spliced in.
	other, err := sealer.Seal(ctx, secret, testContext())
	if err != nil {
		t.Fatal(err)
	}
	_, edkA, sealedA, err := parse(blob)
	if err != nil {
		t.Fatal(err)
	}
	headerB, edkB, _, err := parse(other)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(edkA, edkB) {
		t.Fatal("two seals share their encrypted data key")
	}
	spliced := append(bytes.Clone(headerB), sealedA...)
	if _, err := sealer.Open(ctx, spliced, testContext()); err == nil {
		t.Fatal("opened a ciphertext under another blob's data key")
	}
	if _, err := sealer.Open(ctx, blob, testContext()); err != nil {
		t.Fatalf("the intact blob: %v", err)
	}
}

func TestOpenGarbageFailsCleanly(t *testing.T) {
	s := kmslocal.Shared(t)
	sealer := New(s.Client(), s.KeyID())
	ctx := context.Background()
	noise := make([]byte, 300)
	rand.Read(noise)
	for name, blob := range map[string][]byte{
		"nil":              nil,
		"empty":            {},
		"version only":     {version},
		"no key":           {version, 0, 0},
		"unknown version":  append([]byte{2, 0, 4, 1, 2, 3, 4}, make([]byte, 28)...),
		"key past the end": append([]byte{version, 0xff, 0xff}, make([]byte, 100)...),
		"no room for tag":  append([]byte{version, 0, 4, 1, 2, 3, 4}, make([]byte, 27)...),
	} {
		if _, err := sealer.Open(ctx, blob, testContext()); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	// Well formed, but nothing KMS made.
	forged := append([]byte{version, 0, 200}, noise...)
	if _, err := sealer.Open(ctx, forged, testContext()); err == nil || errors.Is(err, ErrMalformed) {
		t.Errorf("forged blob: %v, want a KMS error", err)
	}
}

// stub is a KMS that hands out one fixed data key and records the contexts
// it is called with.
type stub struct {
	mu        sync.Mutex
	deadlines []time.Time
	fail      error
}

var (
	stubKey = bytes.Repeat([]byte{0x42}, keySize)
	stubEDK = []byte("stub-encrypted-data-key")
)

func (s *stub) record(ctx context.Context) error {
	d, ok := ctx.Deadline()
	if !ok {
		return errors.New("stub: no deadline")
	}
	s.mu.Lock()
	s.deadlines = append(s.deadlines, d)
	s.mu.Unlock()
	return s.fail
}

func (s *stub) GenerateDataKey(ctx context.Context, _ *kms.GenerateDataKeyInput, _ ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	if err := s.record(ctx); err != nil {
		return nil, err
	}
	return &kms.GenerateDataKeyOutput{Plaintext: bytes.Clone(stubKey), CiphertextBlob: bytes.Clone(stubEDK)}, nil
}

func (s *stub) Decrypt(ctx context.Context, in *kms.DecryptInput, _ ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	if err := s.record(ctx); err != nil {
		return nil, err
	}
	if !bytes.Equal(in.CiphertextBlob, stubEDK) {
		return nil, errors.New("stub: not our data key")
	}
	return &kms.DecryptOutput{Plaintext: bytes.Clone(stubKey)}, nil
}

func TestEachKMSCallHasItsOwnDeadline(t *testing.T) {
	st := &stub{}
	sealer := New(st, "stub-key")
	start := time.Now()
	blob, err := sealer.Seal(context.Background(), []byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sealer.Open(context.Background(), blob, nil); err != nil {
		t.Fatal(err)
	}
	// A caller's earlier deadline stays.
	early, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := sealer.Open(early, blob, nil); err != nil {
		t.Fatal(err)
	}
	callerDeadline, _ := early.Deadline()
	if len(st.deadlines) != 3 {
		t.Fatalf("%d calls", len(st.deadlines))
	}
	for i, d := range st.deadlines[:2] {
		if d.Before(start.Add(callTimeout)) || d.After(time.Now().Add(callTimeout)) {
			t.Errorf("call %d: deadline %v after the call, want %v", i, d.Sub(start), callTimeout)
		}
	}
	if !st.deadlines[2].Equal(callerDeadline) {
		t.Errorf("deadline %v, the caller's %v", st.deadlines[2], callerDeadline)
	}

	// KMS errors are wrapped.
	st.fail = errors.New("stub: access denied")
	if _, err := sealer.Seal(context.Background(), []byte("x"), nil); !errors.Is(err, st.fail) {
		t.Errorf("Seal: %v", err)
	}
	if _, err := sealer.Open(context.Background(), blob, nil); !errors.Is(err, st.fail) {
		t.Errorf("Open: %v", err)
	}
}

func FuzzOpenNeverPanics(f *testing.F) {
	sealer := New(&stub{}, "stub-key")
	for _, p := range []string{"", "ghp_seed", strings.Repeat("z", 100)} {
		blob, err := sealer.Seal(context.Background(), []byte(p), map[string]string{"user": "u-1"})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(blob)
	}
	f.Add([]byte{})
	f.Add([]byte{version})
	f.Add([]byte{version, 0, 0})
	f.Add([]byte{version, 0xff, 0xff, 1, 2, 3})
	f.Add([]byte{2, 0, 1, 9})
	f.Fuzz(func(t *testing.T, blob []byte) {
		orig := bytes.Clone(blob)
		header, edk, sealed, err := parse(blob)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("parse error %v is not ErrMalformed", err)
			}
		} else {
			if len(edk) == 0 || len(sealed) < overhead || !bytes.Equal(header[3:], edk) ||
				!bytes.Equal(append(bytes.Clone(header), sealed...), blob) {
				t.Fatalf("parse split %x into %x | %x | %x", blob, header, edk, sealed)
			}
		}
		// Open with the stub, which decrypts only its own data key: whatever
		// the input, an answer or an error, never a panic, and the input
		// left as it was.
		_, _ = sealer.Open(context.Background(), blob, map[string]string{"user": "u-1"})
		if !bytes.Equal(blob, orig) {
			t.Fatal("Open changed its input")
		}
	})
}
