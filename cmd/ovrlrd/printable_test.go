package main

import "testing"

// What drives a terminal is shown, not sent to it.
func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"plain text, é ✓":       "plain text, é ✓",
		"\x1b[31mred\x1b]0;t\a": `\x1b[31mred\x1b]0;t\a`,
		"tab\there\r\n":         `tab\there\r\n`,
		"bidi \u202eevil":       `bidi \u202eevil`,
		"bad \xff byte":         `bad \xff byte`,
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}
