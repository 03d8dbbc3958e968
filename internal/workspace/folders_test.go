package workspace_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

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
	put(t, srv.URL, "users/u1/projects/p1/cache.tar.gz", buf.Bytes())
	for name, restore := range map[string]func() error{
		"git":   func() error { return s.RestoreGit(ctx, "u1", "c1", fresh) },
		"cache": func() error { return s.RestoreProjectCache(ctx, "u1", "p1", fresh) },
	} {
		if err := restore(); err == nil || errors.Is(err, workspace.ErrMissing) {
			t.Fatalf("%s: an archive with a link restored: %v", name, err)
		}
		if _, err := os.Stat(fresh); !os.IsNotExist(err) {
			t.Fatalf("%s: a refused restore left a folder", name)
		}
	}
	// The same archive as a working folder, which keeps its links.
	put(t, srv.URL, "users/u1/conversations/c1/v/work.tar.gz", buf.Bytes())
	if err := s.RestoreWork(ctx, "u1", "c1", "v", fresh); err != nil {
		t.Fatal(err)
	}
	if target, err := os.Readlink(filepath.Join(fresh, "config")); err != nil || target != secret {
		t.Fatalf("the working folder's link: %q %v", target, err)
	}
}

// A clock the fake bucket reads, moved by the test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// request is what the fake bucket was asked.
type request struct {
	method, path, copySource, directive string
	length                              int64
}

// recorder keeps the requests the fake bucket serves.
type recorder struct {
	mu   sync.Mutex
	reqs []request
}

func (r *recorder) take() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	reqs := r.reqs
	r.reqs = nil
	return reqs
}

// newTimedS3 is newS3 on the clock, recording every request.
func newTimedS3(t *testing.T, c *clock) (*httptest.Server, *recorder) {
	t.Helper()
	rec := &recorder{}
	// Its clock is not the client's: no skew check.
	fake := gofakes3.New(s3mem.New(s3mem.WithTimeSource(c)), gofakes3.WithTimeSource(c), gofakes3.WithTimeSkewLimit(0)).Server()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, request{r.Method, r.URL.Path, r.Header.Get("X-Amz-Copy-Source"), r.Header.Get("X-Amz-Metadata-Directive"), r.ContentLength})
		rec.mu.Unlock()
		fake.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, rec
}

func head(t *testing.T, endpoint, key string) *s3.HeadObjectOutput {
	t.Helper()
	c := s3.NewFromConfig(awsCfg(), func(o *s3.Options) { o.BaseEndpoint = aws.String(endpoint); o.UsePathStyle = true })
	out, err := c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("sessions"), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TouchGit makes the git directory new again for the bucket's lifecycle:
// one copy of the object onto itself, by the bucket, with nothing
// downloaded or uploaded, after which it restores as it was. Ids that need
// encoding in the copy's source name their own key still.
func TestTouchGit(t *testing.T) {
	c := &clock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	srv, rec := newTimedS3(t, c)
	s, _ := newStore(t, srv.URL, 1<<20)
	ctx := context.Background()
	for _, u := range []string{"u1", "u 1+%é"} {
		t.Run(u, func(t *testing.T) {
			k := "users/" + u + "/conversations/c1/git.tar.gz"
			dir := filepath.Join(t.TempDir(), "git")
			write(t, filepath.Join(dir, "HEAD"), "ref: refs/heads/main\n")
			write(t, filepath.Join(dir, "objects", "ab", "cdef"), "blob")
			if err := s.SaveGit(ctx, u, "c1", dir); err != nil {
				t.Fatal(err)
			}
			before := head(t, srv.URL, k)
			archiveBefore := get(t, srv.URL, k)
			objects := count(t, srv.URL, "")
			c.Advance(30 * 24 * time.Hour)
			rec.take()
			if err := s.TouchGit(ctx, u, "c1"); err != nil {
				t.Fatal(err)
			}
			reqs := rec.take()
			source := "sessions/" + k
			if len(reqs) != 1 || reqs[0].method != http.MethodPut || reqs[0].length > 0 ||
				mustUnescape(t, reqs[0].copySource) != source || reqs[0].directive != "REPLACE" {
				t.Fatalf("TouchGit asked %+v, want one copy of %s onto itself", reqs, source)
			}
			after := head(t, srv.URL, k)
			if !aws.ToTime(after.LastModified).Equal(aws.ToTime(before.LastModified).Add(30 * 24 * time.Hour)) {
				t.Fatalf("last modified %v, was %v", after.LastModified, before.LastModified)
			}
			if aws.ToString(after.ContentType) != "application/gzip" || aws.ToString(after.ETag) != aws.ToString(before.ETag) {
				t.Fatalf("content type %q, etag %q (was %q)", aws.ToString(after.ContentType), aws.ToString(after.ETag), aws.ToString(before.ETag))
			}
			if !bytes.Equal(get(t, srv.URL, k), archiveBefore) || count(t, srv.URL, "") != objects {
				t.Fatal("the touch changed the bucket's content")
			}
			fresh := filepath.Join(t.TempDir(), "git")
			if err := s.RestoreGit(ctx, u, "c1", fresh); err != nil {
				t.Fatal(err)
			}
			if read(t, filepath.Join(fresh, "HEAD")) != "ref: refs/heads/main\n" || read(t, filepath.Join(fresh, "objects", "ab", "cdef")) != "blob" {
				t.Fatal("restored content differs")
			}
		})
	}
}

func mustUnescape(t *testing.T, s string) string {
	t.Helper()
	u, err := url.PathUnescape(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// There is nothing to touch for a conversation whose git directory was
// never saved, or has expired: ErrMissing, and the bucket stays empty.
func TestTouchGitMissingIsErrMissing(t *testing.T) {
	srv := newS3(t)
	s, _ := newStore(t, srv.URL, 1<<20)
	if err := s.TouchGit(context.Background(), "u1", "c1"); !errors.Is(err, workspace.ErrMissing) {
		t.Fatalf("touch of nothing: %v", err)
	}
	if n := count(t, srv.URL, ""); n != 0 {
		t.Fatalf("%d objects after touching nothing", n)
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
			"TouchGit user":            func() error { return s.TouchGit(ctx, bad, "c1") },
			"TouchGit conv":            func() error { return s.TouchGit(ctx, "u2", bad) },
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
