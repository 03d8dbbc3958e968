package devserver

import (
	"context"
	"crypto/subtle"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/ovrlrd/cloud/internal/config"
)

// presignedUpload reports whether r is a PUT the server presigned for an
// import's upload: under uploads/, with config.LocalUploadKeyID, unexpired,
// and signed with secret. Unlike the server's own calls, whose key id is
// the secret itself, such a URL shows its key id to whoever holds it, so
// here the signature is what opens the stand-in, as in S3.
func presignedUpload(r *http.Request, secret string, now time.Time) bool {
	q := r.URL.Query()
	scope := strings.Split(q.Get("X-Amz-Credential"), "/")
	_, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if r.Method != http.MethodPut || !strings.HasPrefix(key, "uploads/") || strings.Contains(key, "..") ||
		len(scope) != 5 || scope[0] != config.LocalUploadKeyID || scope[3] != "s3" {
		return false
	}
	// The server signs these two headers and no other. The signer below
	// signs what it chooses whatever the URL names, so anything else, and
	// any x-amz- header (x-amz-copy-source would turn the PUT into a copy
	// of another key), is refused here rather than left unchecked.
	if q.Get("X-Amz-SignedHeaders") != "content-length;host" {
		return false
	}
	for name := range r.Header {
		if strings.HasPrefix(strings.ToLower(name), "x-amz-") {
			return false
		}
	}
	signedAt, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	if err != nil {
		return false
	}
	expires, err := strconv.Atoi(q.Get("X-Amz-Expires"))
	if err != nil || now.After(signedAt.Add(time.Duration(expires)*time.Second)) {
		return false
	}
	// Sign the same request again, without its signature: the same
	// method, path, query and signed headers give the same one.
	want := q.Get("X-Amz-Signature")
	q.Del("X-Amz-Signature")
	u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: q.Encode()}
	again, err := http.NewRequest(r.Method, u.String(), nil)
	if err != nil {
		return false
	}
	again.ContentLength = r.ContentLength
	signed, _, err := v4.NewSigner().PresignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: config.LocalUploadKeyID, SecretAccessKey: secret},
		again, "UNSIGNED-PAYLOAD", "s3", scope[2], signedAt)
	if err != nil {
		return false
	}
	got, err := url.Parse(signed)
	return err == nil && want != "" && subtle.ConstantTimeCompare([]byte(got.Query().Get("X-Amz-Signature")), []byte(want)) == 1
}
