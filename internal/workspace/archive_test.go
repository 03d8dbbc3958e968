package workspace

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/devkit/sandboxtest"
)

// A file swapped for a link to a secret while the folder is packed (a tool
// still running, racing the save) never brings the secret into the archive.
func TestPackNeverFollowsASwappedLink(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("AWS_SECRET_ACCESS_KEY=canary"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	sandboxtest.Swap(t, filepath.Join(dir, "notes.txt"), secret)
	failed := 0
	for range 200 {
		var buf bytes.Buffer
		if err := pack(&buf, dir, 1<<20); err != nil {
			failed++ // what matters is what a save that succeeds holds
			continue
		}
		gz, err := gzip.NewReader(&buf)
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(gz)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(tr)
			if strings.Contains(string(b), "canary") {
				t.Fatalf("%s carried the secret into the archive", hdr.Name)
			}
		}
	}
	if failed > 0 {
		t.Fatalf("%d of 200 saves failed: a tool's race must not stop the save", failed)
	}
}
