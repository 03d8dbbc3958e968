package workspace_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ovrlrd/cloud/internal/workspace"
)

func awsCfg() aws.Config {
	return aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")}
}

// s3 serves the S3 protocol on loopback (gofakes3).
func newS3(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(srv.Close)
	return srv
}

func newStore(t *testing.T, endpoint string, limit int64) (*workspace.Store, *strings.Builder) {
	t.Helper()
	logs := &strings.Builder{}
	s := workspace.New(awsCfg(), workspace.Options{Bucket: "sessions", Endpoint: endpoint, MaxBytes: limit}, slog.New(slog.NewJSONHandler(logs, nil)))
	if err := s.EnsureBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s, logs
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func folders(root string) workspace.Folders {
	return workspace.Folders{Config: filepath.Join(root, "config"), Work: filepath.Join(root, "work")}
}

func TestSaveThenRestoreOnAFreshEnvironment(t *testing.T) {
	s, _ := newStore(t, newS3(t).URL, 1<<20)
	ctx := context.Background()
	root := t.TempDir()
	f := folders(root)
	write(t, filepath.Join(f.Config, "projects", "-tmp-work-c1", "s1.jsonl"), `{"type":"user"}`+"\n")
	write(t, filepath.Join(f.Work, "out.txt"), "hello\n")
	v1, err := s.Save(ctx, "u1", "c1", f)
	if err != nil || v1 == "" {
		t.Fatal(v1, err)
	}
	// A fresh environment: nothing local.
	os.RemoveAll(root)
	if err := s.Restore(ctx, "u1", "c1", v1, f); err != nil {
		t.Fatal(err)
	}
	if read(t, filepath.Join(f.Config, "projects", "-tmp-work-c1", "s1.jsonl")) != `{"type":"user"}`+"\n" || read(t, filepath.Join(f.Work, "out.txt")) != "hello\n" {
		t.Fatal("restored content differs")
	}
}

// Turn 1 on environment A, turn 2 on B, turn 3 on A again: A's folders are
// older than the saved version, and the restore replaces them, leaving
// nothing of A's copy behind.
func TestAStaleLocalCopyNeverWins(t *testing.T) {
	s, _ := newStore(t, newS3(t).URL, 1<<20)
	ctx := context.Background()
	a, b := folders(t.TempDir()), folders(t.TempDir())
	write(t, filepath.Join(a.Work, "turn"), "1")
	write(t, filepath.Join(a.Work, "only-in-turn-1"), "x")
	v1, err := s.Save(ctx, "u1", "c1", a)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Restore(ctx, "u1", "c1", v1, b); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(b.Work, "turn"), "2")
	os.Remove(filepath.Join(b.Work, "only-in-turn-1"))
	v2, err := s.Save(ctx, "u1", "c1", b)
	if err != nil || v2 == v1 {
		t.Fatalf("second save: %q %v", v2, err)
	}
	if err := s.Restore(ctx, "u1", "c1", v2, a); err != nil {
		t.Fatal(err)
	}
	if read(t, filepath.Join(a.Work, "turn")) != "2" {
		t.Fatal("environment A kept its own, older folder")
	}
	if _, err := os.Stat(filepath.Join(a.Work, "only-in-turn-1")); !os.IsNotExist(err) {
		t.Fatal("a file of the stale copy survived the restore")
	}
}

// A version the bucket no longer has (expired by its lifecycle) is
// ErrMissing, never an empty folder that looks restored.
func TestAMissingVersionIsErrMissing(t *testing.T) {
	srv := newS3(t)
	s, _ := newStore(t, srv.URL, 1<<20)
	ctx := context.Background()
	f := folders(t.TempDir())
	write(t, filepath.Join(f.Config, "t"), "x")
	v, err := s.Save(ctx, "u1", "c1", f)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Discard(ctx, "u1", "c1", v); err != nil {
		t.Fatal(err)
	}
	if n := count(t, srv.URL, "users/u1/"); n != 0 {
		t.Fatalf("%d objects after discarding the only version", n)
	}
	if err := s.Restore(ctx, "u1", "c1", v, f); !errors.Is(err, workspace.ErrMissing) {
		t.Fatalf("restore of an expired version: %v", err)
	}
}

// The layout before versions is still read: a config archive, and a work
// archive only when the folder was not empty.
func TestTheUnversionedLayoutIsRestored(t *testing.T) {
	srv := newS3(t)
	s, _ := newStore(t, srv.URL, 1<<20)
	put(t, srv.URL, "users/u1/conversations/c1/config.tar.gz", archive(t, "s.jsonl", "old"))
	f := folders(t.TempDir())
	if err := s.Restore(context.Background(), "u1", "c1", "", f); err != nil {
		t.Fatal(err)
	}
	if read(t, filepath.Join(f.Config, "s.jsonl")) != "old" {
		t.Fatal("the unversioned transcript was not restored")
	}
}

// A folder above the cap is refused: the caller learns it, and nothing is
// uploaded that a later turn could restore as if it were current.
func TestAboveTheCapIsRefused(t *testing.T) {
	srv := newS3(t)
	s, _ := newStore(t, srv.URL, 1024)
	f := folders(t.TempDir())
	write(t, filepath.Join(f.Work, "big.bin"), strings.Repeat("x", 2048))
	write(t, filepath.Join(f.Config, "small"), "ok")
	if _, err := s.Save(context.Background(), "u1", "c1", f); !errors.Is(err, workspace.ErrTooLarge) {
		t.Fatalf("save above the cap: %v", err)
	}
	if n := count(t, srv.URL, "users/u1/"); n != 0 {
		t.Fatalf("%d objects uploaded for a refused save", n)
	}
}

func archive(t *testing.T, name, content string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(content)), Mode: 0o600})
	tw.Write([]byte(content))
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func put(t *testing.T, endpoint, key string, body []byte) {
	t.Helper()
	c := s3.NewFromConfig(awsCfg(), func(o *s3.Options) { o.BaseEndpoint = aws.String(endpoint); o.UsePathStyle = true })
	_, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("sessions"), Key: aws.String(key), Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDeleteConversationAndUser(t *testing.T) {
	srv := newS3(t)
	s, _ := newStore(t, srv.URL, 1<<20)
	ctx := context.Background()
	for _, c := range []string{"c1", "c2"} {
		f := folders(t.TempDir())
		write(t, filepath.Join(f.Work, "x"), c)
		write(t, filepath.Join(f.Config, "y"), c)
		for range 2 { // two versions each
			if _, err := s.Save(ctx, "u1", c, f); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.DeleteConversation(ctx, "u1", "c1"); err != nil {
		t.Fatal(err)
	}
	if n := count(t, srv.URL, "users/u1/"); n != 4 {
		t.Fatalf("%d objects after deleting one conversation", n)
	}
	if err := s.DeleteUser(ctx, "u1", nil); err != nil {
		t.Fatal(err)
	}
	if n := count(t, srv.URL, "users/u1/"); n != 0 {
		t.Fatalf("%d objects after deleting the user", n)
	}
}

func count(t *testing.T, endpoint, prefix string) int {
	t.Helper()
	c := s3.NewFromConfig(awsCfg(), func(o *s3.Options) { o.BaseEndpoint = aws.String(endpoint); o.UsePathStyle = true })
	out, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("sessions"), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Contents)
}

// A hostile archive in the bucket cannot write outside the folder.
func TestRestoreRefusesEscapingArchives(t *testing.T) {
	srv := newS3(t)
	s, _ := newStore(t, srv.URL, 1<<20)
	put(t, srv.URL, "users/u1/conversations/c1/v/config.tar.gz", archive(t, "ok", "ok"))
	for _, name := range []string{"../escape.txt", "/etc/evil", "a/../../escape"} {
		put(t, srv.URL, "users/u1/conversations/c1/v/work.tar.gz", archive(t, name, "x"))
		root := t.TempDir()
		f := folders(filepath.Join(root, "conv"))
		if err := s.Restore(context.Background(), "u1", "c1", "v", f); err == nil || errors.Is(err, workspace.ErrMissing) {
			t.Fatalf("%s: restored (%v)", name, err)
		}
		if _, err := os.Stat(f.Work); !os.IsNotExist(err) {
			t.Fatalf("%s: a half-restored folder is left", name)
		}
		if _, err := os.Stat(filepath.Join(root, "escape.txt")); err == nil {
			t.Fatalf("%s: escaped", name)
		}
	}
}

func TestS3DownIsAnError(t *testing.T) {
	srv := newS3(t)
	s, _ := newStore(t, srv.URL, 1<<20)
	srv.Close()
	f := folders(t.TempDir())
	write(t, filepath.Join(f.Work, "x"), "x")
	if _, err := s.Save(context.Background(), "u1", "c1", f); err == nil {
		t.Fatal("a save to an unreachable bucket succeeded")
	}
}

// linksOf writes, beside a file, the links a checkout may hold: relative,
// absolute, dangling, and to a folder; name to target.
func linksOf(t *testing.T, dir string) map[string]string {
	t.Helper()
	write(t, filepath.Join(dir, "src", "main.go"), "package main\n")
	targets := map[string]string{
		"rel":             "src/main.go",
		"abs":             "/absolute/target",
		"dangling":        "../no/such/file",
		"src/up":          "../rel",
		"folder":          "src",
		"deep/er/missing": "/no/such/absolute/path",
	}
	for name, target := range targets {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	return targets
}

// checkLinks fails unless each name in dir is a link with its exact target.
func checkLinks(t *testing.T, dir string, targets map[string]string) {
	t.Helper()
	for name, want := range targets {
		p := filepath.Join(dir, name)
		fi, err := os.Lstat(p)
		if err != nil || fi.Mode().Type() != os.ModeSymlink {
			t.Fatalf("%s: not a link (%v, %v)", name, fi, err)
		}
		if got, err := os.Readlink(p); err != nil || got != want {
			t.Fatalf("%s: target %q (%v), want %q", name, got, err, want)
		}
	}
}

// Links of both folders of a conversation (a checkout of a user's project
// has some) come back as links, with the targets they had, on every later
// turn: Save, Restore, then RestoreWork, then a second save of the restored
// folders.
func TestLinksRoundTrip(t *testing.T) {
	s, _ := newStore(t, newS3(t).URL, 1<<20)
	ctx := context.Background()
	f := folders(t.TempDir())
	work := linksOf(t, f.Work)
	config := linksOf(t, f.Config)
	v1, err := s.Save(ctx, "u1", "c1", f)
	if err != nil {
		t.Fatal(err)
	}
	fresh := folders(t.TempDir())
	if err := s.Restore(ctx, "u1", "c1", v1, fresh); err != nil {
		t.Fatal(err)
	}
	checkLinks(t, fresh.Work, work)
	checkLinks(t, fresh.Config, config)
	if read(t, filepath.Join(fresh.Work, "src", "main.go")) != "package main\n" {
		t.Fatal("the file beside the links differs")
	}
	// The second turn saves what the first restored.
	v2, err := s.Save(ctx, "u1", "c1", fresh)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "work")
	if err := s.RestoreWork(ctx, "u1", "c1", v2, dir); err != nil {
		t.Fatal(err)
	}
	checkLinks(t, dir, work)
}

// A link in a conversation folder is saved as its target's name, never as
// what it names: a file or a folder outside the conversation never reaches
// the bucket.
func TestSaveNeverFollowsLinks(t *testing.T) {
	srv := newS3(t)
	s, _ := newStore(t, srv.URL, 1<<20)
	outside := t.TempDir()
	write(t, filepath.Join(outside, "secret"), "AWS_SECRET_ACCESS_KEY=canary")
	f := folders(t.TempDir())
	write(t, filepath.Join(f.Work, "a.txt"), "mine")
	for name, target := range map[string]string{"file": filepath.Join(outside, "secret"), "folder": outside} {
		for _, dir := range []string{f.Work, f.Config} {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	v, err := s.Save(context.Background(), "u1", "c1", f)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"work", "config"} {
		gz, err := gzip.NewReader(bytes.NewReader(get(t, srv.URL, "users/u1/conversations/c1/"+v+"/"+name+".tar.gz")))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(gz)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("canary")) {
			t.Fatalf("%s: a link was followed into the archive", name)
		}
	}
}

func get(t *testing.T, endpoint, key string) []byte {
	t.Helper()
	c := s3.NewFromConfig(awsCfg(), func(o *s3.Options) { o.BaseEndpoint = aws.String(endpoint); o.UsePathStyle = true })
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("sessions"), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
