package workspace_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
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
	if err := s.Save(ctx, "u1", "c1", f); err != nil {
		t.Fatal(err)
	}
	// A fresh environment: nothing local.
	os.RemoveAll(root)
	if err := s.Restore(ctx, "u1", "c1", f); err != nil {
		t.Fatal(err)
	}
	if read(t, filepath.Join(f.Config, "projects", "-tmp-work-c1", "s1.jsonl")) != `{"type":"user"}`+"\n" || read(t, filepath.Join(f.Work, "out.txt")) != "hello\n" {
		t.Fatal("restored content differs")
	}
	// Present locally: restore leaves it alone.
	write(t, filepath.Join(f.Work, "out.txt"), "newer\n")
	if err := s.Restore(ctx, "u1", "c1", f); err != nil || read(t, filepath.Join(f.Work, "out.txt")) != "newer\n" {
		t.Fatalf("restore overwrote a local folder: %v", err)
	}
	// Never saved: nothing to restore, not an error.
	if err := s.Restore(ctx, "u1", "other", folders(t.TempDir())); err != nil {
		t.Fatal(err)
	}
}

func TestAboveTheCapIsSkippedWithAWarning(t *testing.T) {
	s, logs := newStore(t, newS3(t).URL, 1024)
	f := folders(t.TempDir())
	write(t, filepath.Join(f.Work, "big.bin"), strings.Repeat("x", 2048))
	write(t, filepath.Join(f.Config, "small"), "ok")
	if err := s.Save(context.Background(), "u1", "c1", f); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "above the cap") {
		t.Fatalf("no warning: %s", logs.String())
	}
	fresh := folders(t.TempDir())
	if err := s.Restore(context.Background(), "u1", "c1", fresh); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(fresh.Work); !os.IsNotExist(err) {
		t.Fatal("the oversized folder was saved")
	}
	if read(t, filepath.Join(fresh.Config, "small")) != "ok" {
		t.Fatal("the small folder was not saved")
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
		if err := s.Save(ctx, "u1", c, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteConversation(ctx, "u1", "c1"); err != nil {
		t.Fatal(err)
	}
	if n := count(t, srv.URL, "users/u1/"); n != 2 {
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
	for _, name := range []string{"../escape.txt", "/etc/evil", "a/../../escape"} {
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		tw := tar.NewWriter(gz)
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: 1, Mode: 0o600})
		tw.Write([]byte("x"))
		tw.Close()
		gz.Close()
		c := s3.NewFromConfig(awsCfg(), func(o *s3.Options) { o.BaseEndpoint = aws.String(srv.URL); o.UsePathStyle = true })
		_, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("sessions"),
			Key: aws.String("users/u1/conversations/c1/work.tar.gz"), Body: bytes.NewReader(buf.Bytes())})
		if err != nil {
			t.Fatal(err)
		}
		root := t.TempDir()
		f := folders(filepath.Join(root, "conv"))
		if err := s.Restore(context.Background(), "u1", "c1", f); err == nil {
			t.Fatalf("%s: restored", name)
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
	if err := s.Save(context.Background(), "u1", "c1", f); err == nil {
		t.Fatal("a save to an unreachable bucket succeeded")
	}
}
