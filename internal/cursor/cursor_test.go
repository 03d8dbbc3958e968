package cursor_test

import (
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/cursor"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

type position struct {
	SK string `json:"sk"`
	N  int    `json:"n"`
}

func codec() cursor.Codec { return cursor.New([]byte("0123456789abcdef0123456789abcdef")) }

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	c := codec()
	in := position{SK: "MSG#0001769774400123#6f1c2f9e-0000-4000-8000-000000000000", N: 42}
	s := c.Encode("msgs:abc", in)
	var out position
	if err := c.Decode("msgs:abc", s, &out); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if out != in {
		t.Fatalf("round trip: got %+v, want %+v", out, in)
	}
}

func TestAlphabetIsURLSafe(t *testing.T) {
	t.Parallel()
	c := codec()
	// Enough varied payloads that every base64 character shows up.
	for i := range 2000 {
		s := c.Encode("scope", position{SK: strings.Repeat("\xff~?>", i%17), N: i * 7919})
		if strings.ContainsAny(s, "+/=") {
			t.Fatalf("cursor %q contains + / or =", s)
		}
	}
}

func TestTamperedByteIsInvalid(t *testing.T) {
	t.Parallel()
	c := codec()
	s := c.Encode("scope", position{SK: "x", N: 1})
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range len(s) {
		for _, r := range alphabet {
			if byte(r) == s[i] {
				continue
			}
			bad := s[:i] + string(r) + s[i+1:]
			var out position
			if err := c.Decode("scope", bad, &out); !ovrlrd.IsCode(err, ovrlrd.EINVALID) {
				t.Fatalf("changed char %d to %q: got %v, want EINVALID", i, r, err)
			}
		}
	}
}

func TestWrongScopeOrKeyIsInvalid(t *testing.T) {
	t.Parallel()
	c := codec()
	s := c.Encode("convs:user-a", position{SK: "x"})
	var out position
	if err := c.Decode("convs:user-b", s, &out); !ovrlrd.IsCode(err, ovrlrd.EINVALID) {
		t.Fatalf("wrong scope: got %v, want EINVALID", err)
	}
	other := cursor.New([]byte("another key"))
	if err := other.Decode("convs:user-a", s, &out); !ovrlrd.IsCode(err, ovrlrd.EINVALID) {
		t.Fatalf("wrong key: got %v, want EINVALID", err)
	}
}

func TestGarbageIsInvalid(t *testing.T) {
	t.Parallel()
	c := codec()
	valid := c.Encode("s", position{SK: "x"})
	inputs := []string{
		"", "a", "====", "not base64!", "+/+/", strings.Repeat("A", 22),
		strings.Repeat("A", cursor.MaxLen+1),
		valid + "=", valid + "A", valid[:len(valid)-1], " " + valid,
		c.Encode("s", "not an object"), // signed, but the wrong shape
	}
	for _, in := range inputs {
		var out position
		err := c.Decode("s", in, &out)
		if !ovrlrd.IsCode(err, ovrlrd.EINVALID) {
			t.Errorf("Decode(%q): got %v, want EINVALID", in, err)
			continue
		}
		if msg := ovrlrd.ErrorMessage(err); msg != "Invalid cursor." {
			t.Errorf("Decode(%q): message %q", in, msg)
		}
	}
}

func TestLongValidCursorIsRefused(t *testing.T) {
	t.Parallel()
	c := codec()
	s := c.Encode("s", position{SK: strings.Repeat("x", cursor.MaxLen)})
	var out position
	if err := c.Decode("s", s, &out); !ovrlrd.IsCode(err, ovrlrd.EINVALID) {
		t.Fatalf("over-long cursor: got %v, want EINVALID", err)
	}
}

func FuzzDecode(f *testing.F) {
	c := codec()
	f.Add(c.Encode("s", position{SK: "MSG#1", N: 3}))
	f.Add("")
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		var out position
		err := c.Decode("s", s, &out)
		if err != nil && !ovrlrd.IsCode(err, ovrlrd.EINVALID) {
			t.Fatalf("Decode(%q): %v is not EINVALID", s, err)
		}
		if err == nil && c.Encode("s", out) == "" {
			t.Fatalf("accepted %q but cannot re-encode it", s)
		}
	})
}
