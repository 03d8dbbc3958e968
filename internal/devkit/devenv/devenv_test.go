package devenv

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

// From a package's folder, as go test runs, the root is the folder above
// that holds go.mod; from outside any module there is none.
func TestModuleRootFromAPackage(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "internal", "devkit", "devenv", "devenv.go")); err != nil {
		t.Errorf("root %s: %v", root, err)
	}
	t.Chdir(t.TempDir())
	if root, err := ModuleRoot(); err == nil {
		t.Errorf("outside the module: root %s", root)
	}
}

// The address given is free: a server can listen on it.
func TestFreeAddrCanBeListenedOn(t *testing.T) {
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	l.Close()
}
