// Package claudetest gives other packages' tests a fake Claude Code CLI: a
// small program (internal/claude/testdata/fakeclaude) that speaks the CLI's stream-json,
// driven by the prompt it reads on stdin, with fault injection. See that
// program's documentation for the modes.
package claudetest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var build struct {
	once sync.Once
	path string
	err  error
}

// FakeCLI returns the path of the fake CLI, building it once per test
// binary (into a temporary directory named after the source's hash, reused
// by later test runs). It fails the test if it cannot be built.
func FakeCLI(t testing.TB) string {
	t.Helper()
	build.once.Do(func() { build.path, build.err = buildFake() })
	if build.err != nil {
		t.Fatalf("claudetest: building the fake CLI: %v", build.err)
	}
	return build.path
}

// Script is a prompt that drives the fake CLI, from its mode and then
// key, value pairs: Script("rate", "n", 100, "rate", 1000) is
// {"mode":"rate","n":100,"rate":1000}. The fake reads any prompt that is a
// JSON object with a "mode" as a script (or FAKECLAUDE_SCRIPT from its
// environment).
func Script(mode string, kv ...any) string {
	script := map[string]any{"mode": mode}
	for i := 0; i+1 < len(kv); i += 2 {
		script[fmt.Sprint(kv[i])] = kv[i+1]
	}
	out, err := json.Marshal(script)
	if err != nil {
		panic(err)
	}
	return string(out)
}

func buildFake() (string, error) {
	_, file, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(file), "..", "..", "claude", "testdata", "fakeclaude")
	code, err := os.ReadFile(filepath.Join(src, "main.go"))
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(append(code, runtime.Version()...))
	dir := filepath.Join(os.TempDir(), "ovrlrd-fakeclaude-"+hex.EncodeToString(sum[:8]))
	bin := filepath.Join(dir, "claude")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm() == 0o711 {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp := fmt.Sprintf("%s.%d.tmp", bin, os.Getpid())
	defer os.Remove(tmp)
	// go test puts its own toolchain first in the test's PATH.
	cmd := exec.Command("go", "build", "-o", tmp, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%v: %s", err, out)
	}
	// Execute-only, as the real CLI is installed: a turn's user may run it
	// but not read it, which keeps the process's /proc entries closed.
	if err := os.Chmod(tmp, 0o711); err != nil {
		return "", err
	}
	// Rename is atomic: concurrent test binaries never see half a file.
	if err := os.Rename(tmp, bin); err != nil {
		return "", err
	}
	return bin, nil
}

// RealCLI is the pinned Claude Code CLI that `make deps` installs. It fails
// the test, never skips: the CLI is a dependency of the repository.
func RealCLI(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", "..", "node_modules", ".bin", "claude")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("the Claude Code CLI is not installed (%v): run `make deps`", err)
	}
	return filepath.Clean(p)
}
