// Package sandboxtest gives tests folders that a turn's own user can reach:
// as root, turns run as users of their own, who must pass through every
// folder above their roots (go test makes its temporary folders 0700).
package sandboxtest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Dir is a new temporary folder, removed after the test, that other users
// may pass through but not list.
func Dir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Processes lists the live processes whose real user is in [first, last],
// as "pid name", from /proc (Linux).
func Processes(first, last int) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		var name, state string
		uid := -1
		for line := range strings.Lines(string(status)) {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			switch f[0] {
			case "Name:":
				name = f[1]
			case "State:":
				state = f[1]
			case "Uid:":
				uid, _ = strconv.Atoi(f[1])
			}
		}
		if uid >= first && uid <= last && state != "Z" {
			out = append(out, e.Name()+" "+name)
		}
	}
	return out
}

// Swap makes path flip, over and over until the test ends, between what it
// is and a symbolic link to target: a hostile tool racing the server while
// it walks a folder.
func Swap(t testing.TB, path, target string) {
	t.Helper()
	real, link := path+".real", path+".link"
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				_ = os.Rename(path, real)
				_ = os.Rename(link, path)
				_ = os.Rename(path, link)
				_ = os.Rename(real, path)
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}
