// Package functions_test checks what each Lambda function links: only
// shipped code, never the development kit, a stand-in or a test helper.
package functions_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/ovrlrd/cloud"

// deps lists the packages function links (go list -deps).
func deps(t *testing.T, function string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "./"+function).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", function, err)
	}
	return strings.Fields(string(out))
}

func TestFunctionsLinkNoDevelopmentCode(t *testing.T) {
	for _, fn := range []string{"auth", "chat", "stream"} {
		for _, p := range deps(t, fn) {
			base := p[strings.LastIndex(p, "/")+1:]
			ours := strings.HasPrefix(p, module+"/")
			if p == "testing" || strings.HasPrefix(p, "testing/") || strings.HasPrefix(p, module+"/internal/devkit/") ||
				ours && (strings.HasSuffix(base, "fake") || strings.HasSuffix(base, "test")) {
				t.Errorf("%s links %s", fn, p)
			}
		}
	}
}
