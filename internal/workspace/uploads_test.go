package workspace_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// An upload is a PUT of exactly its size, signed, into the user's own
// uploads: read back by its user only, refused above the reader's cap,
// gone once deleted, and swept with the user's data.
func TestUploads(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, newS3(t).URL, 1<<20)
	body := []byte(strings.Repeat("x", 1000))
	u, err := s.PresignUpload(ctx, "user-1", int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	q, _ := url.Parse(u.URL)
	if u.Method != http.MethodPut || u.Headers["Content-Length"] != "1000" ||
		!strings.Contains(q.Query().Get("X-Amz-SignedHeaders"), "content-length") || q.Query().Get("X-Amz-Expires") != "900" {
		t.Fatalf("upload %+v", u)
	}
	if left := time.Until(time.Time(u.ExpiresAt)); left < 14*time.Minute || left > 15*time.Minute {
		t.Fatalf("expires in %v", left)
	}
	putUpload(t, u, body)

	got, err := s.Upload(ctx, "user-1", u.UploadID, 1000)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
	if _, err := s.Upload(ctx, "user-1", u.UploadID, 999); !ovrlrd.IsCode(err, ovrlrd.ETOOLARGE) {
		t.Fatalf("above the cap: %v", err)
	}
	for _, c := range []struct{ user, id string }{{"user-2", u.UploadID}, {"user-1", "../user-2/x"}, {"user-1", strings.ToUpper(u.UploadID)}} {
		if _, err := s.Upload(ctx, c.user, c.id, 1000); !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
			t.Fatalf("%s reading %q: %v", c.user, c.id, err)
		}
	}
	if err := s.DeleteUpload(ctx, "user-1", u.UploadID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Upload(ctx, "user-1", u.UploadID, 1000); !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
		t.Fatalf("after delete: %v", err)
	}

	v, err := s.PresignUpload(ctx, "user-1", 3)
	if err != nil {
		t.Fatal(err)
	}
	putUpload(t, v, []byte("abc"))
	if err := s.DeleteUser(ctx, "user-1", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Upload(ctx, "user-1", v.UploadID, 1000); !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
		t.Fatalf("after the user's deletion: %v", err)
	}
}

func putUpload(t *testing.T, u ovrlrd.Upload, body []byte) {
	t.Helper()
	req, err := http.NewRequest(u.Method, u.URL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}
}
