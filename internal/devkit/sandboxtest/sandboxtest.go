// Package sandboxtest gives tests folders that a turn's own user can reach:
// as root, turns run as users of their own, who must pass through every
// folder above their roots (go test makes its temporary folders 0700).
package sandboxtest

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/ovrlrd/cloud/internal/procfs"
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

var statusField = regexp.MustCompile(`(?m)^(Name|State|Uid):\s+(\S+)`)

// Processes lists the live processes whose real user is in [first, last],
// as "pid name", from /proc (Linux).
func Processes(first, last int) []string {
	var out []string
	var buf []byte
	for _, pid := range procfs.Pids() {
		status, _ := procfs.ReadFile("/proc/"+strconv.Itoa(pid)+"/status", &buf)
		field := map[string]string{}
		for _, m := range statusField.FindAllSubmatch(status, -1) {
			field[string(m[1])] = string(m[2])
		}
		if uid, err := strconv.Atoi(field["Uid"]); err == nil && uid >= first && uid <= last && field["State"] != "Z" {
			out = append(out, strconv.Itoa(pid)+" "+field["Name"])
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
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The test's context ends before its cleanups run.
		for t.Context().Err() == nil {
			_ = os.Rename(path, real)
			_ = os.Rename(link, path)
			_ = os.Rename(path, link)
			_ = os.Rename(real, path)
		}
	}()
	t.Cleanup(func() { <-done })
}
