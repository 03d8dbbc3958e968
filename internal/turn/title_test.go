package turn

import "testing"

func TestCleanTitle(t *testing.T) {
	cases := map[string]string{
		"  Fixing the build  \n": "Fixing the build",
		`"Quoted title"`:         "Quoted title",
		"'Single quoted'":        "Single quoted",
		"KEEP":                   "",
		"":                       "",
		"Spaces   inside\nlines": "Spaces inside lines",
		string(make([]rune, 0)):  "",
		"A title that goes on and on well past the sixty character limit for titles": "A title that goes on and on well past the sixty character...",
	}
	for in, want := range cases {
		if got := cleanTitle(in); got != want {
			t.Errorf("cleanTitle(%q) = %q, want %q", in, got, want)
		}
	}
	if n := len([]rune(cleanTitle(string(make([]byte, 200))))); n > maxTitle {
		t.Errorf("title of %d characters", n)
	}
}
