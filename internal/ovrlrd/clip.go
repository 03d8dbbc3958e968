package ovrlrd

import "unicode/utf8"

// ClipRunes is s cut to its first n characters (runes, never half of one),
// or s itself when it is no longer: the one cut of a title, a prompt, a
// push's text or an audit field.
func ClipRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}
