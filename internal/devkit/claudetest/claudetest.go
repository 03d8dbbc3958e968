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

// root is the repository's top folder, found from this file's place in it.
var root = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}()

var buildFakeOnce = sync.OnceValues(buildFake)

// FakeCLI returns the path of the fake CLI, building it once per test
// binary (into a temporary directory named after the source's hash, reused
// by later test runs). It fails the test if it cannot be built.
func FakeCLI(t testing.TB) string {
	t.Helper()
	path, err := buildFakeOnce()
	if err != nil {
		t.Fatalf("claudetest: building the fake CLI: %v", err)
	}
	return path
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
	src := filepath.Join(root, "internal", "claude", "testdata", "fakeclaude")
	code, err := os.ReadFile(filepath.Join(src, "main.go"))
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(append(code, runtime.Version()...))
	bin := filepath.Join(os.TempDir(), "ovrlrd-fakeclaude-"+hex.EncodeToString(sum[:8]), "claude")
	// Open to every user whatever the umask of whoever made it first: a
	// turn's user must reach the binary.
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	if err := os.Chmod(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	tmp := fmt.Sprintf("%s.%d.tmp", bin, os.Getpid())
	defer os.Remove(tmp)
	// go test puts its own toolchain first in the test's PATH; go build
	// makes the folder.
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
	// Rename is atomic: concurrent test binaries never see half a file, and
	// a binary at bin is always execute-only.
	return bin, os.Rename(tmp, bin)
}

// RealCLI is the pinned Claude Code CLI that `make deps` installs. It fails
// the test, never skips: the CLI is a dependency of the repository.
func RealCLI(t testing.TB) string {
	t.Helper()
	p := filepath.Join(root, "node_modules", ".bin", "claude")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("the Claude Code CLI is not installed (%v): run `make deps`", err)
	}
	return filepath.Clean(p)
}
