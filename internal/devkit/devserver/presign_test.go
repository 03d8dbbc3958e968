package devserver

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/workspace"
)

// A presigned upload opens the S3 stand-in for its own PUT only: the key id
// it shows opens nothing else, and the signature must hold for the exact
// request, length included, until it expires.
func TestPresignedUploadOpensOnlyItsPUT(t *testing.T) {
	srv := httptest.NewServer(s3Access("LOCALKEY", gofakes3.New(s3mem.New()).Server()))
	defer srv.Close()
	ctx := context.Background()
	files := workspace.New(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("LOCALKEY", "LOCALKEY", "")},
		workspace.Options{Bucket: "ovrlrd-sessions", Endpoint: srv.URL, MaxBytes: 1 << 20,
			UploadCredentials: credentials.NewStaticCredentialsProvider(config.LocalUploadKeyID, "LOCALKEY", "")}, slog.Default())
	if err := files.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	u, err := files.PresignUpload(ctx, "user-1", 5)
	if err != nil {
		t.Fatal(err)
	}
	send := func(method, url string, body []byte, header ...string) int {
		t.Helper()
		req, _ := http.NewRequest(method, url, bytes.NewReader(body))
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		name, method, url string
		body              string
		header            []string
	}{
		{"a longer body", "PUT", u.URL, "hello!", nil},
		{"a GET", "GET", u.URL, "", nil},
		{"another key", "PUT", strings.Replace(u.URL, "/user-1/", "/user-2/", 1), "hello", nil},
		{"a forged signature", "PUT", u.URL[:len(u.URL)-4] + "0000", "hello", nil},
		{"a multipart part", "PUT", u.URL + "&partNumber=1&uploadId=x", "hello", nil},
		{"a copy", "PUT", u.URL, "hello", []string{"X-Amz-Copy-Source", "ovrlrd-sessions/users/user-2/secret"}},
		{"a copy the URL claims to sign", "PUT", strings.Replace(u.URL, "content-length%3Bhost", "content-length%3Bhost%3Bx-amz-copy-source", 1), "hello",
			[]string{"X-Amz-Copy-Source", "ovrlrd-sessions/users/user-2/secret"}},
	} {
		if got := send(c.method, c.url, []byte(c.body), c.header...); got != http.StatusForbidden {
			t.Errorf("%s: %d", c.name, got)
		}
	}
	if got := send("PUT", u.URL, []byte("hello")); got != http.StatusOK {
		t.Fatalf("the presigned PUT: %d", got)
	}
	if got, err := files.Upload(ctx, "user-1", u.UploadID, 5); err != nil || string(got) != "hello" {
		t.Fatalf("uploaded %q, %v", got, err)
	}
	req, _ := http.NewRequest("PUT", u.URL, strings.NewReader("hello"))
	req.Host = strings.TrimPrefix(srv.URL, "http://")
	if presignedUpload(req, "LOCALKEY", time.Now().Add(workspace.UploadTTL+time.Minute)) {
		t.Error("an expired upload opened the stand-in")
	}
	if !presignedUpload(req, "LOCALKEY", time.Now()) || presignedUpload(req, "OTHERKEY", time.Now()) {
		t.Error("the signature is not what decides")
	}
}
