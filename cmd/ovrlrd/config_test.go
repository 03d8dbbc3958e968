package main

import (
	"encoding/base64"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// The config file is written whole or not at all, readable by the user
// alone, in a folder of the user's alone.
func TestSaveConfig(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ovrlrd")
	path := filepath.Join(dir, "config.json")
	// An earlier file, and folder, left open to others.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(`{"url":"https://old.example.com","token":"old"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	old, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if runtime.GOOS == "windows" {
		// A file open without FILE_SHARE_DELETE cannot be renamed over
		// there: replaceFile retries while another run briefly holds it,
		// not for a handle kept open.
		old.Close()
	}

	want := configFile{URL: "https://api.example.com", APIKey: "key", Token: "new", ExpiresAt: time.Unix(1_800_000_000, 0).UTC()}
	if err := saveConfig(path, want); err != nil {
		t.Fatal(err)
	}
	if got, err := loadConfig(path); err != nil || got != want {
		t.Fatalf("loaded %+v, %v; saved %+v", got, err, want)
	}
	// Replaced by a rename: what was open still reads the old file whole.
	if b, _ := io.ReadAll(old); runtime.GOOS != "windows" && !strings.Contains(string(b), `"token":"old"`) {
		t.Errorf("the old file was written in place: %q", b)
	}
	// No temporary file is left.
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"config.json"}) {
		t.Errorf("the folder holds %q", names)
	}
	if runtime.GOOS == "windows" {
		return // no Unix modes
	}
	for p, mode := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, %v; want %v", p, fi.Mode(), err, mode)
		}
	}
}

// A save that fails leaves no temporary file behind.
func TestSaveConfigFailureCleansUp(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ovrlrd")
	path := filepath.Join(dir, "config.json")
	// A folder where the file should be: the rename fails.
	if err := os.MkdirAll(filepath.Join(path, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := saveConfig(path, configFile{URL: "https://api.example.com", Token: "t"}); err == nil {
		t.Fatal("saved over a folder")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the folder holds %d entries", len(entries))
	}
}

func jwtWith(payload string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc([]byte(payload)) + ".c2ln"
}

func TestTokenExpiry(t *testing.T) {
	for token, want := range map[string]time.Time{
		jwtWith(`{"sub":"u","exp":1800000000}`): time.Unix(1_800_000_000, 0).UTC(),
		jwtWith(`{"sub":"u"}`):                  {},
		jwtWith(`{"exp":"soon"}`):               {},
		"not-a-jwt":                             {},
		"a.%%%.c":                               {},
	} {
		if got := tokenExpiry(token); !got.Equal(want) {
			t.Errorf("tokenExpiry(%q) = %v, want %v", token, got, want)
		}
	}
}

// The token goes over https, or plain http to this machine only.
func TestCheckURL(t *testing.T) {
	for raw, want := range map[string]string{
		"https://api.example.com/":     "https://api.example.com",
		"https://api.example.com/v1":   "https://api.example.com/v1",
		"http://127.0.0.1:3000":        "http://127.0.0.1:3000",
		"http://localhost:3000/":       "http://localhost:3000",
		"http://[::1]:3000":            "http://[::1]:3000",
		"http://api.example.com":       "",
		"http://10.0.0.2:3000":         "",
		"ftp://api.example.com":        "",
		"api.example.com":              "",
		"https://u:p@api.example.com":  "",
		"https://api.example.com/?x=1": "",
	} {
		got, err := checkURL(raw)
		if got != want || (err == nil) != (want != "") {
			t.Errorf("checkURL(%q) = %q, %v; want %q", raw, got, err, want)
		}
	}
}

// Flags win over the file; a token from --token is not kept in it.
func TestResolve(t *testing.T) {
	d := newDesk(t)
	if r := d.run(t, "login", "--url", "https://file.example.com", "--api-key", "file-key", "--token", jwtWith(`{"exp":1800000000}`)); r.code != 0 {
		t.Fatalf("login: %+v", r)
	}
	s, err := resolve(common{}, d.system(), io.Discard)
	if err != nil || s.url != "https://file.example.com" || s.apiKey != "file-key" || s.file == "" || !s.expiry.Equal(time.Unix(1_800_000_000, 0)) {
		t.Fatalf("from the file: %+v, %v", s, err)
	}
	if newClient(&s).renew == nil {
		t.Error("the file's token is never refreshed")
	}
	s, err = resolve(common{url: "https://flag.example.com", token: "flag-token"}, d.system(), io.Discard)
	if err != nil || s.url != "https://flag.example.com" || s.apiKey != "" || s.token != "flag-token" || s.file != "" {
		t.Fatalf("with flags (the file's key stays with its address): %+v, %v", s, err)
	}
	s, err = resolve(common{token: "flag-token"}, d.system(), io.Discard)
	if err != nil || s.apiKey != "file-key" || s.token != "flag-token" {
		t.Fatalf("a token given for the file's address: %+v, %v", s, err)
	}
	if newClient(&s).renew != nil {
		t.Error("a --token is refreshed")
	}
	if _, err := resolve(common{}, newDesk(t).system(), io.Discard); err == nil || !strings.Contains(err.Error(), "ovrlrd login") {
		t.Errorf("without a login: %v", err)
	}
}

func TestLoginNeedsToken(t *testing.T) {
	d := newDesk(t)
	if r := d.run(t, "login", "--url", "https://api.example.com"); r.code != 2 || !strings.Contains(r.stderr, "--token is required") {
		t.Errorf("%+v", r)
	}
	if r := d.run(t, "login", "--token", "t"); r.code != 1 || !strings.Contains(r.stderr, "--url is required") {
		t.Errorf("%+v", r)
	}
	if _, err := os.Stat(filepath.Join(d.config, "ovrlrd", "config.json")); err == nil {
		t.Error("a refused login wrote the file")
	}
}
