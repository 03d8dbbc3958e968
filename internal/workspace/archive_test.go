package workspace

import (
	"archive/tar"
	"bytes"
	"cmp"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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
	for i := range 200 {
		ls := []links{noLinks, keepLinks}[i%2]
		var buf bytes.Buffer
		if err := pack(&buf, dir, 1<<20, ls); err != nil {
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
			if hdr.Typeflag == tar.TypeSymlink && (ls == noLinks || hdr.Linkname != secret) {
				t.Fatalf("%s: a link %q packed (mode %d)", hdr.Name, hdr.Linkname, ls)
			}
		}
	}
	if failed > 0 {
		t.Fatalf("%d of 200 saves failed: a tool's race must not stop the save", failed)
	}
}

// entries lists an archive: name, then type and link target or content.
func entries(t *testing.T, archive []byte) map[string]string {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	got := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		switch h.Typeflag {
		case tar.TypeSymlink:
			got[h.Name] = "link " + h.Linkname
		case tar.TypeReg:
			got[h.Name] = "file " + string(b)
		default:
			got[h.Name] = fmt.Sprintf("type %c", h.Typeflag)
		}
	}
}

// A link is packed as a link, its target as it is, never as what it
// names: not a file's content, not a folder's files. Where links are not
// kept, they are left out; FIFOs always are.
func TestPackKeepsLinksAsLinks(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("canary"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	targets := map[string]string{
		"to-secret": secret,
		"to-folder": outside,
		"relative":  "a.txt",
		"up":        "../elsewhere",
		"dangling":  "no/such/file",
	}
	for name, target := range targets {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, ls := range []links{keepLinks, noLinks} {
		var buf bytes.Buffer
		if err := pack(&buf, dir, 1<<20, ls); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(decompressed(t, buf.Bytes()), []byte("canary")) {
			t.Fatalf("mode %d: a link was followed into the archive", ls)
		}
		want := map[string]string{"a.txt": "file mine"}
		if ls == keepLinks {
			for name, target := range targets {
				want[name] = "link " + target
			}
		}
		if got := entries(t, buf.Bytes()); !maps.Equal(got, want) {
			t.Fatalf("mode %d: packed %v, want %v", ls, got, want)
		}
	}
}

func decompressed(t *testing.T, archive []byte) []byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(gz)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tarOf(t *testing.T, hs ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, h := range hs {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write(bytes.Repeat([]byte("x"), int(h.Size))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := cmp.Or(tw.Close(), gz.Close()); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// What unpack refuses: links unless kept, hard links, devices and FIFOs
// always, and a later entry reaching outside the folder through a link an
// earlier one made.
func TestUnpackRefusals(t *testing.T) {
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim")
	if err := os.WriteFile(victim, []byte("untouched"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := &tar.Header{Typeflag: tar.TypeSymlink, Name: "l", Linkname: "a.txt"}
	for _, tc := range []struct {
		name   string
		ls     links
		hs     []*tar.Header
		refuse bool
	}{
		{"link kept", keepLinks, []*tar.Header{link}, false},
		{"link refused", noLinks, []*tar.Header{link}, true},
		{"hard link", keepLinks, []*tar.Header{{Typeflag: tar.TypeReg, Name: "a.txt", Mode: 0o600}, {Typeflag: tar.TypeLink, Name: "h", Linkname: "a.txt"}}, true},
		{"device", keepLinks, []*tar.Header{{Typeflag: tar.TypeChar, Name: "null", Devmajor: 1, Devminor: 3}}, true},
		{"fifo", keepLinks, []*tar.Header{{Typeflag: tar.TypeFifo, Name: "fifo"}}, true},
		{"a file through a link to outside", keepLinks, []*tar.Header{
			{Typeflag: tar.TypeSymlink, Name: "f", Linkname: victim},
			{Typeflag: tar.TypeReg, Name: "f", Mode: 0o600, Size: 3},
		}, true},
		{"a file through a link to a folder outside", keepLinks, []*tar.Header{
			{Typeflag: tar.TypeSymlink, Name: "d", Linkname: outside},
			{Typeflag: tar.TypeReg, Name: "d/victim", Mode: 0o600, Size: 3},
		}, true},
		{"a folder through a link to outside", keepLinks, []*tar.Header{
			{Typeflag: tar.TypeSymlink, Name: "d", Linkname: outside},
			{Typeflag: tar.TypeDir, Name: "d/new/", Mode: 0o700},
		}, true},
		{"a link through a link to outside", keepLinks, []*tar.Header{
			{Typeflag: tar.TypeSymlink, Name: "d", Linkname: outside},
			{Typeflag: tar.TypeSymlink, Name: "d/new", Linkname: "x"},
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := unpack(bytes.NewReader(tarOf(t, tc.hs...)), t.TempDir(), 1<<20, tc.ls)
			if tc.refuse != (err != nil) {
				t.Fatalf("unpack: %v", err)
			}
			if b, _ := os.ReadFile(victim); string(b) != "untouched" {
				t.Fatal("a file outside the folder was written")
			}
			if got, _ := os.ReadDir(outside); len(got) != 1 {
				t.Fatalf("the folder outside holds %v", got)
			}
		})
	}
}

// A link counts as the length of its target, packed and unpacked.
func TestLinksCountTheirTargets(t *testing.T) {
	target := strings.Repeat("t", 100)
	dir := t.TempDir()
	if err := os.Symlink(target, filepath.Join(dir, "l")); err != nil {
		t.Fatal(err)
	}
	if err := pack(io.Discard, dir, 99, keepLinks); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("pack within 99 bytes: %v", err)
	}
	if err := pack(io.Discard, dir, 100, keepLinks); err != nil {
		t.Fatalf("pack within 100 bytes: %v", err)
	}
	archive := tarOf(t, &tar.Header{Typeflag: tar.TypeSymlink, Name: "l", Linkname: target})
	if err := unpack(bytes.NewReader(archive), t.TempDir(), 99, keepLinks); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("unpack within 99 bytes: %v", err)
	}
	if err := unpack(bytes.NewReader(archive), t.TempDir(), 100, keepLinks); err != nil {
		t.Fatalf("unpack within 100 bytes: %v", err)
	}
}
