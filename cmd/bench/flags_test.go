package main

import (
	"io"
	"testing"
)

// -quick picks the smaller counts; arguments left over and a zero timeout
// end the command with status 2, -help with 0.
func TestQuickPicksSmallerCounts(t *testing.T) {
	full, err := parseFlags(nil, io.Discard)
	quick, qerr := parseFlags([]string{"--quick=true"}, io.Discard)
	if err != nil || qerr != nil || full.relayN != 5000 || quick.relayN != 1000 || quick.duration >= full.duration {
		t.Errorf("full %+v (%v), quick %+v (%v)", full, err, quick, qerr)
	}
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"left", "over"}, 2},
		{[]string{"-timeout", "0s"}, 2},
		{[]string{"-turns", "5"}, 2},
		{[]string{"-help"}, 0},
	} {
		if code := run(t.Context(), c.args, io.Discard, io.Discard); code != c.code {
			t.Errorf("%q: exit %d, want %d", c.args, code, c.code)
		}
	}
}
