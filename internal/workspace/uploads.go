package workspace

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/google/uuid"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// UploadTTL is how long a presigned upload accepts its PUT.
const UploadTTL = 15 * time.Minute

// uploadsPrefix holds sessions uploaded for an import, under the user's id.
// It is apart from users/ because the bucket's lifecycle expires it within
// two days, and a rule cannot name a folder below a per-user one.
func uploadsPrefix(userID string) string { return "uploads/" + userID + "/" }

// errNoUpload is a missing, expired, or another user's upload alike.
var errNoUpload = ovrlrd.Errorf(ovrlrd.ENOTFOUND, "Upload not found. It may have expired; please upload the session again.")

// PresignUpload returns a PUT of exactly size bytes into a new upload of
// userID.
func (s *Store) PresignUpload(ctx context.Context, userID string, size int64) (ovrlrd.Upload, error) {
	id := uuid.NewString()
	expires := time.Now().Add(UploadTTL)
	req, err := s.presign.PresignPutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(uploadsPrefix(userID) + id),
		// Signed: S3 refuses a body of any other length.
		ContentLength: aws.Int64(size),
	}, s3.WithPresignExpires(UploadTTL))
	if err != nil {
		return ovrlrd.Upload{}, fmt.Errorf("workspace: presign: %w", err)
	}
	return ovrlrd.Upload{
		UploadID: id, URL: req.URL, Method: req.Method,
		Headers:   map[string]string{"Content-Length": strconv.FormatInt(size, 10)},
		ExpiresAt: ovrlrd.Timestamp(expires),
	}, nil
}

// Upload reads an upload of userID, refusing one above max bytes.
func (s *Store) Upload(ctx context.Context, userID, uploadID string, max int64) ([]byte, error) {
	if u, err := uuid.Parse(uploadID); err != nil || u.String() != uploadID {
		return nil, errNoUpload
	}
	ctx, cancel := context.WithTimeout(ctx, 3*opTimeout)
	defer cancel()
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(uploadsPrefix(userID) + uploadID)})
	if errors.As(err, new(*types.NoSuchKey)) {
		return nil, errNoUpload
	}
	if err != nil {
		return nil, errUploadUnread(err)
	}
	defer out.Body.Close()
	if aws.ToInt64(out.ContentLength) > max {
		return nil, tooLargeUpload(max)
	}
	var buf bytes.Buffer
	buf.Grow(int(min(aws.ToInt64(out.ContentLength), max)))
	if _, err := buf.ReadFrom(io.LimitReader(out.Body, max+1)); err != nil {
		return nil, errUploadUnread(err)
	}
	if int64(buf.Len()) > max {
		return nil, tooLargeUpload(max)
	}
	return buf.Bytes(), nil
}

// errUploadUnread is a bucket that did not answer: the client may try
// again.
func errUploadUnread(err error) error {
	return ovrlrd.Wrap(ovrlrd.EUNAVAILABLE, "Could not read the upload. Please try again.", fmt.Errorf("workspace: read upload: %w", err))
}

func tooLargeUpload(max int64) error {
	return ovrlrd.Errorf(ovrlrd.ETOOLARGE, "The upload is larger than %d bytes.", max)
}

// DeleteUpload removes an upload once imported; the lifecycle removes the
// rest.
func (s *Store) DeleteUpload(ctx context.Context, userID, uploadID string) error {
	return s.deleteKey(ctx, uploadsPrefix(userID)+uploadID)
}
