package procfs

import "testing"

// The command name may hold spaces and parentheses: the fields are counted
// from its last ')'.
func TestParseStatCountsFromTheLastParen(t *testing.T) {
	line := "4242 (a) (b c)) S 17 4242 4240 0 -1 4194560 90 0 0 0 1 2 0 0 20 0 1 0 987654 1 2 3\n"
	got, ok := ParseStat(4242, []byte(line))
	want := Stat{PID: 4242, PPID: 17, PGRP: 4242, SID: 4240, State: 'S'}
	if !ok || got != want {
		t.Errorf("ParseStat = %+v, %v; want %+v", got, ok, want)
	}
	for _, bad := range []string{"", "4242 (x", "4242 (x) S 1 2 3", "4242 (x) SS 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19"} {
		if s, ok := ParseStat(4242, []byte(bad)); ok {
			t.Errorf("ParseStat(%q) = %+v, want no answer", bad, s)
		}
	}
}
