package transcript

import (
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"
)

// TestSlug: the expectations come from the CLI's own function run under
// node; TestRealCLI checks Slug against where the CLI wrote.
func TestSlug(t *testing.T) {
	for _, tc := range []struct{ dir, want string }{
		{"/srv/me/my_work.dir", "-srv-me-my-work-dir"},
		{"C:\\Users\\me\\app", "C--Users-me-app"},
		{"/srv/é", "-srv--"},  // one UTF-16 unit
		{"/srv/😀", "-srv---"}, // two
		{"/" + strings.Repeat("x", 300), "-" + strings.Repeat("x", 199) + "-x8zr69"},
		{"/srv/" + strings.Repeat("ü😀é", 3) + "/" + strings.Repeat("a", 250),
			"-srv--------------" + strings.Repeat("a", 200-18) + "-jzslue"},
		{strings.Repeat("a", 200), strings.Repeat("a", 200)},
	} {
		if got := Slug(tc.dir); got != tc.want {
			t.Errorf("Slug(%q) = %q, want %q", tc.dir, got, tc.want)
		}
	}
	// Math.abs(-2^31) is 2^31: the one hash int32 cannot hold.
	if h := pathHash(utf16.Encode([]rune("polygenelubricants"))); h != 1<<31 {
		t.Errorf("hash %d, want 2^31", h)
	}
}

func TestPath(t *testing.T) {
	got, err := Path("/cfg", "/data/conv", testSession)
	if want := filepath.Join("/cfg", "projects", "-data-conv", testSession+".jsonl"); err != nil || got != want {
		t.Errorf("Path = %q, %v; want %q", got, err, want)
	}
	for _, id := range []string{"", "..", "../../etc/passwd", strings.ToUpper(testSession)} {
		if p, err := Path("/cfg", "/data", id); err == nil {
			t.Errorf("Path with session %q = %q", id, p)
		}
	}
}
