package workspace_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/workspace"
)

func newStoreWith(t *testing.T, o workspace.Options) *workspace.Store {
	t.Helper()
	o.Bucket = "sessions"
	s := workspace.New(awsCfg(), o, slog.New(slog.DiscardHandler))
	if err := s.EnsureBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// exists reports whether the bucket holds exactly key.
func exists(t *testing.T, endpoint, key string) bool {
	t.Helper()
	return count(t, endpoint, key) == 1
}

// A conversation's git directory and a project's cache each go to their one
// key, are replaced by the next save, and come back on a fresh environment
// with nothing of a stale local copy left.
func TestGitDirectoryAndProjectCacheRoundTrip(t *testing.T) {
	srv := newS3(t)
	s, _ := newStore(t, srv.URL, 1<<20)
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		key     string
		save    func(dir string) error
		restore func(dir string) error
	}{
		{"git", "users/u1/conversations/c1/git.tar.gz",
			func(dir string) error { return s.SaveGit(ctx, "u1", "c1", dir) },
			func(dir string) error { return s.RestoreGit(ctx, "u1", "c1", dir) }},
		{"cache", "users/u1/projects/p1/cache.tar.gz",
			func(dir string) error { return s.SaveProjectCache(ctx, "u1", "p1", dir) },
			func(dir string) error { return s.RestoreProjectCache(ctx, "u1", "p1", dir) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "git")
			write(t, filepath.Join(dir, "HEAD"), "ref: refs/heads/main\n")
			write(t, filepath.Join(dir, "objects", "ab", "cdef"), "v1")
			if err := tc.save(dir); err != nil {
				t.Fatal(err)
			}
			write(t, filepath.Join(dir, "objects", "ab", "cdef"), "v2")
			if err := tc.save(dir); err != nil {
				t.Fatal(err)
			}
			if !exists(t, srv.URL, tc.key) {
				t.Fatalf("no %s", tc.key)
			}
			fresh := filepath.Join(t.TempDir(), "git")
			write(t, filepath.Join(fresh, "stale"), "x")
			if err := tc.restore(fresh); err != nil {
				t.Fatal(err)
			}
			if read(t, filepath.Join(fresh, "HEAD")) != "ref: refs/heads/main\n" || read(t, filepath.Join(fresh, "objects", "ab", "cdef")) != "v2" {
				t.Fatal("restored content differs from the last save")
			}
			if _, err := os.Stat(filepath.Join(fresh, "stale")); !os.IsNotExist(err) {
				t.Fatal("a file of the stale copy survived the restore")
			}
			if _, err := os.Stat(fresh + ".restoring"); !os.IsNotExist(err) {
				t.Fatal("the restore left its temporary folder")
			}
		})
	}
	if n := count(t, srv.URL, "users/u1/"); n != 2 {
		t.Fatalf("%d objects, want one per folder", n)
	}
}

func TestMissingGitAndCacheAreErrMissing(t *testing.T) {
	s, _ := newStore(t, newS3(t).URL, 1<<20)
	ctx := context.Background()
	dir := t.TempDir()
	if err := s.RestoreGit(ctx, "u1", "c1", dir); !errors.Is(err, workspace.ErrMissing) {
		t.Fatalf("git: %v", err)
	}
	if err := s.RestoreProjectCache(ctx, "u1", "p1", dir); !errors.Is(err, workspace.ErrMissing) {
		t.Fatalf("cache: %v", err)
	}
}

// The git directory goes with its conversation, a cache with its project,
// and both with the user.
func TestDeletionsReachGitAndCache(t *testing.T) {
	srv := newS3(t)
	s, _ := newStore(t, srv.URL, 1<<20)
	ctx := context.Background()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "HEAD"), "x")
	for _, c := range []string{"c1", "c2"} {
		if err := s.SaveGit(ctx, "u1", c, dir); err != nil {
			t.Fatal(err)
		}
	}
	// p1 and p10: a project's prefix ends with its id.
	for _, p := range []string{"p1", "p10"} {
		if err := s.SaveProjectCache(ctx, "u1", p, dir); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteConversation(ctx, "u1", "c1"); err != nil {
		t.Fatal(err)
	}
	if exists(t, srv.URL, "users/u1/conversations/c1/git.tar.gz") || !exists(t, srv.URL, "users/u1/conversations/c2/git.tar.gz") {
		t.Fatal("DeleteConversation: wrong git directories left")
	}
	if err := s.DeleteProject(ctx, "u1", "p1"); err != nil {
		t.Fatal(err)
	}
	if exists(t, srv.URL, "users/u1/projects/p1/cache.tar.gz") || !exists(t, srv.URL, "users/u1/projects/p10/cache.tar.gz") {
		t.Fatal("DeleteProject: wrong caches left")
	}
	if err := s.DeleteUser(ctx, "u1", nil); err != nil {
		t.Fatal(err)
	}
	if n := count(t, srv.URL, "users/u1/"); n != 0 {
		t.Fatalf("%d objects after deleting the user", n)
	}
}

// Git archives have their own cap, MaxBytes when it is not set: one above
// it is ErrTooLarge and uploads nothing, and the conversation folders keep
// theirs.
func TestGitCap(t *testing.T) {
	ctx := context.Background()
	big := t.TempDir()
	write(t, filepath.Join(big, "objects", "pack", "p.pack"), strings.Repeat("x", 2048))
	for _, tc := range []struct {
		name     string
		o        workspace.Options
		gitFits  bool
		workFits bool
	}{
		{"own cap below", workspace.Options{MaxBytes: 1 << 20, GitMaxBytes: 1024}, false, true},
		{"own cap above", workspace.Options{MaxBytes: 1024, GitMaxBytes: 1 << 20}, true, false},
		{"MaxBytes by default", workspace.Options{MaxBytes: 1024}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newS3(t)
			tc.o.Endpoint = srv.URL
			s := newStoreWith(t, tc.o)
			for name, err := range map[string]error{
				"git":   s.SaveGit(ctx, "u1", "c1", big),
				"cache": s.SaveProjectCache(ctx, "u1", "p1", big),
			} {
				if tc.gitFits && err != nil || !tc.gitFits && !errors.Is(err, workspace.ErrTooLarge) {
					t.Errorf("%s: %v", name, err)
				}
			}
			gitObjects := count(t, srv.URL, "users/u1/")
			if tc.gitFits != (gitObjects == 2) {
				t.Fatalf("%d objects", gitObjects)
			}
			_, err := s.Save(ctx, "u1", "c1", workspace.Folders{Config: t.TempDir(), Work: big})
			if tc.workFits != (err == nil) {
				t.Fatalf("conversation folders: %v", err)
			}
		})
	}
}

// What a git archive may unpack to is bounded by twice the git cap.
func TestRestoreGitIsBounded(t *testing.T) {
	srv := newS3(t)
	s := newStoreWith(t, workspace.Options{Endpoint: srv.URL, MaxBytes: 1 << 20, GitMaxBytes: 1024})
	put(t, srv.URL, "users/u1/conversations/c1/git.tar.gz", archive(t, "objects/big", strings.Repeat("x", 4096)))
	put(t, srv.URL, "users/u1/projects/p1/cache.tar.gz", archive(t, "objects/big", strings.Repeat("x", 4096)))
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "git")
	if err := s.RestoreGit(ctx, "u1", "c1", dir); !errors.Is(err, workspace.ErrTooLarge) {
		t.Fatalf("git: %v", err)
	}
	if err := s.RestoreProjectCache(ctx, "u1", "p1", dir); !errors.Is(err, workspace.ErrTooLarge) {
		t.Fatalf("cache: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatal("a refused restore left a folder")
	}
}

// Links are neither packed from a git directory nor unpacked into one.
func TestGitDirectoryLinks(t *testing.T) {
	srv := newS3(t)
	s, _ := newStore(t, srv.URL, 1<<20)
	ctx := context.Background()
	secret := filepath.Join(t.TempDir(), "secret")
	write(t, secret, "canary")
	dir := filepath.Join(t.TempDir(), "git")
	write(t, filepath.Join(dir, "HEAD"), "x")
	if err := os.Symlink(secret, filepath.Join(dir, "config")); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveGit(ctx, "u1", "c1", dir); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(t.TempDir(), "git")
	if err := s.RestoreGit(ctx, "u1", "c1", fresh); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(fresh, "config")); !os.IsNotExist(err) {
		t.Fatal("a link was saved")
	}

	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "config", Linkname: secret})
	tw.Close()
	gz.Close()
	put(t, srv.URL, "users/u1/conversations/c1/git.tar.gz", buf.Bytes())
	if err := s.RestoreGit(ctx, "u1", "c1", fresh); err == nil || errors.Is(err, workspace.ErrMissing) {
		t.Fatalf("an archive with a link restored: %v", err)
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Fatal("a refused restore left a folder")
	}
}

// RestoreWork brings back the working folder of a version, and only it.
func TestRestoreWork(t *testing.T) {
	srv := newS3(t)
	s, _ := newStore(t, srv.URL, 1<<20)
	ctx := context.Background()
	f := folders(t.TempDir())
	write(t, filepath.Join(f.Config, "projects", "s1.jsonl"), "transcript")
	write(t, filepath.Join(f.Work, "src", "main.go"), "package main\n")
	v, err := s.Save(ctx, "u1", "c1", f)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "work")
	write(t, filepath.Join(dir, "stale"), "x")
	if err := s.RestoreWork(ctx, "u1", "c1", v, dir); err != nil {
		t.Fatal(err)
	}
	if read(t, filepath.Join(dir, "src", "main.go")) != "package main\n" {
		t.Fatal("restored content differs")
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 || entries[0].Name() != "src" {
		t.Fatalf("restored folder holds %v (%v)", entries, err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "config")); !os.IsNotExist(err) {
		t.Fatal("the config folder was restored")
	}
	if err := s.RestoreWork(ctx, "u1", "c1", "no-such-version", dir); !errors.Is(err, workspace.ErrMissing) {
		t.Fatalf("a missing version: %v", err)
	}
	// The layout before versions.
	put(t, srv.URL, "users/u1/conversations/c2/work.tar.gz", archive(t, "old.txt", "old"))
	if err := s.RestoreWork(ctx, "u1", "c2", "", dir); err != nil || read(t, filepath.Join(dir, "old.txt")) != "old" {
		t.Fatalf("unversioned work: %v", err)
	}
}

// An id that could name another key is refused before anything is read,
// written, deleted or cleared.
func TestIDsThatCouldNameAnotherKeyAreRefused(t *testing.T) {
	srv := newS3(t)
	s, _ := newStore(t, srv.URL, 1<<20)
	ctx := context.Background()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "keep"), "x")
	// Something of u2's a bad id could reach.
	if err := s.SaveProjectCache(ctx, "u2", "p1", dir); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Save(ctx, "u2", "c1", workspace.Folders{Config: dir, Work: dir}); err != nil {
		t.Fatal(err)
	}
	before := count(t, srv.URL, "")
	for _, bad := range []string{"", ".", "..", "../u2", "a/b", "x..y", "/"} {
		calls := map[string]func() error{
			"SaveGit user":             func() error { return s.SaveGit(ctx, bad, "c1", dir) },
			"SaveGit conv":             func() error { return s.SaveGit(ctx, "u1", bad, dir) },
			"RestoreGit":               func() error { return s.RestoreGit(ctx, "u1", bad, dir) },
			"SaveProjectCache":         func() error { return s.SaveProjectCache(ctx, "u1", bad, dir) },
			"RestoreProjectCache user": func() error { return s.RestoreProjectCache(ctx, bad, "p1", dir) },
			"RestoreProjectCache":      func() error { return s.RestoreProjectCache(ctx, "u1", bad, dir) },
			"DeleteProject user":       func() error { return s.DeleteProject(ctx, bad, "p1") },
			"DeleteProject":            func() error { return s.DeleteProject(ctx, "u1", bad) },
			"RestoreWork conv":         func() error { return s.RestoreWork(ctx, "u1", bad, "v", dir) },
		}
		if bad != "" { // "" is the layout before versions
			calls["RestoreWork version"] = func() error { return s.RestoreWork(ctx, "u1", "c1", bad, dir) }
		}
		for name, call := range calls {
			if err := call(); err == nil || errors.Is(err, workspace.ErrMissing) {
				t.Errorf("%s %q: %v", name, bad, err)
			}
		}
	}
	if n := count(t, srv.URL, ""); n != before {
		t.Fatalf("%d objects, %d before", n, before)
	}
	if read(t, filepath.Join(dir, "keep")) != "x" {
		t.Fatal("a refused restore cleared its folder")
	}
}
