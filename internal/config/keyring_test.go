package config_test

import (
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/config"
)

func TestParseKeyRing(t *testing.T) {
	t.Parallel()
	ring, err := config.ParseKeyRing(" new:" + key2 + " , old:" + key1 + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if ring.Signing().ID != "new" || ring.Signing().Secret.Reveal() != key2 {
		t.Errorf("signing key %q", ring.Signing().ID)
	}
	if k, ok := ring.Lookup("old"); !ok || k.Secret.Reveal() != key1 {
		t.Error("old key does not verify")
	}
	if _, ok := ring.Lookup("gone"); ok {
		t.Error("unknown kid found")
	}
	// A secret may contain colons; only the first separates the kid.
	ring, err = config.ParseKeyRing("k:" + key1 + ":tail")
	if err != nil || ring.Signing().Secret.Reveal() != key1+":tail" {
		t.Errorf("colon in secret: %v", err)
	}
	if (config.KeyRing{}).Signing().ID != "" {
		t.Error("empty ring has a signing key")
	}
}

func TestParseKeyRingRefuses(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", config.MinKeyBytes)
	cases := map[string]string{
		"":                                   "entry 1 is empty",
		"k1:" + long + ",":                   "entry 2 is empty",
		long:                                 "entry 1 is not kid:secret",
		"k1:short":                           "entry 1 (kid \"k1\"): secret is 5 bytes",
		"k1:" + long[1:]:                     "need at least 32",
		":" + long:                           "kid must match",
		strings.Repeat("k", 33) + ":" + long: "kid must match",
		"k.1:" + long:                        "kid must match",
		"k1:" + long + ",k1:" + long:         `entry 2: duplicate kid "k1"`,
		"a:short,b c:" + long + ",a:" + long: "need at least 32; entry 2: kid must match ^[A-Za-z0-9_-]{1,32}$; entry 3: duplicate kid \"a\"",
	}
	for in, want := range cases {
		_, err := config.ParseKeyRing(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseKeyRing(%q) = %v, want %q", in, err, want)
			continue
		}
		if strings.Contains(err.Error(), long) || strings.Contains(err.Error(), "short") {
			t.Errorf("error quotes a secret: %v", err)
		}
	}
}
