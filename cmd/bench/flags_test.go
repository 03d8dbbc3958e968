package main

import (
	"io"
	"testing"
)

// -quick picks the quick defaults, wherever it stands; a flag given
// explicitly wins; arguments left over, a zero count and -help end the
// command.
func TestQuickYieldsToExplicitFlags(t *testing.T) {
	for _, c := range []struct {
		args            []string
		relayN, n, code int
		ok              bool
	}{
		{[]string{"-relay-n", "7", "-quick"}, 7, 500, 0, true},
		{[]string{"--quick=true", "-load-n", "5"}, 1000, 5, 0, true},
		{[]string{"-relay-n", "7"}, 7, 3000, 0, true},
		{[]string{"left", "over"}, 0, 0, 2, false},
		{[]string{"-timeout", "0s"}, 0, 0, 2, false},
		{[]string{"-turns", "0", "-load"}, 0, 0, 2, false},
		{[]string{"-help"}, 0, 0, 0, false},
	} {
		o, code, ok := parseFlags(c.args, io.Discard)
		if ok != c.ok || code != c.code || (ok && (o.relayN != c.relayN || o.streamN != c.n)) {
			t.Errorf("%q: relay-n=%d load-n=%d, code %d ok %v", c.args, o.relayN, o.streamN, code, ok)
		}
	}
}
