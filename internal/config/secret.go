package config

import (
	"fmt"
	"io"
	"log/slog"
)

const redacted = "[redacted]"

// Secret holds a secret value. Every way of printing, marshalling or
// logging it yields "[redacted]", so a Config logged by mistake leaks
// nothing; Reveal is the one way to read it, and easy to grep for.
type Secret struct {
	value string
}

// NewSecret wraps v.
func NewSecret(v string) Secret { return Secret{value: v} }

// Reveal returns the secret value.
func (s Secret) Reveal() string { return s.value }

// IsZero reports whether no secret is configured.
func (s Secret) IsZero() bool { return s.value == "" }

func (Secret) String() string   { return redacted }
func (Secret) GoString() string { return redacted }

// Format covers every verb and flag, %x and %q included, which would
// otherwise bypass String.
func (Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
func (Secret) LogValue() slog.Value         { return slog.StringValue(redacted) }
