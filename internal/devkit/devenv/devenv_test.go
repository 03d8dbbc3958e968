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

// The ports given are distinct and free: servers can listen on them.
func TestFreePortsCanBeListenedOn(t *testing.T) {
	ports, err := FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Fatalf("port %d given twice: %v", p, ports)
		}
		seen[p] = true
		l, err := net.Listen("tcp", Loopback(p))
		if err != nil {
			t.Fatalf("listen on %d: %v", p, err)
		}
		defer l.Close()
	}
}
