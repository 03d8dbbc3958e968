// Package functions_test checks what each Lambda function links: only
// shipped code, never the development kit, a stand-in or a test helper,
// and only what the function uses.
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

// The CLI runner and projects (git, KMS) are the stream function's alone;
// S3, the Lambda client and APNs are not the auth function's.
func TestFunctionsLinkOnlyWhatTheyUse(t *testing.T) {
	runner := []string{module + "/internal/claude", module + "/internal/sandbox", module + "/internal/turn",
		module + "/internal/project", module + "/internal/repo", module + "/internal/envelope",
		"github.com/go-git/go-git/v5", "github.com/aws/aws-sdk-go-v2/service/kms"}
	banned := map[string][]string{
		"auth": append(runner, module+"/internal/workspace", module+"/internal/push",
			"github.com/aws/aws-sdk-go-v2/service/s3", "github.com/aws/aws-sdk-go-v2/service/lambda", "github.com/sideshow/apns2"),
		"chat": runner,
	}
	for fn, never := range banned {
		linked := map[string]bool{}
		for _, p := range deps(t, fn) {
			linked[p] = true
		}
		for _, p := range never {
			if linked[p] {
				t.Errorf("%s links %s", fn, p)
			}
		}
	}
}
