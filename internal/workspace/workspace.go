// Package workspace keeps what the Claude Code CLI leaves on disk for a
// conversation (its session transcript and the conversation's working
// folder) in S3, so a turn that lands on a fresh Lambda execution
// environment still resumes the conversation. /tmp is per environment;
// the bucket is not.
package workspace

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Store saves and restores conversation folders.
type Store struct {
	client *s3.Client
	bucket string
	limit  int64 // bytes per folder; larger ones are not saved
	log    *slog.Logger
}

// Options configure a Store.
type Options struct {
	Bucket   string
	Endpoint string // a local S3 stand-in; empty in AWS
	MaxBytes int64
}

// opTimeout bounds one S3 request: a turn must not hang on its bucket.
const opTimeout = 20 * time.Second

// New returns a Store.
func New(cfg aws.Config, o Options, log *slog.Logger) *Store {
	client := s3.NewFromConfig(cfg, func(so *s3.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
			so.UsePathStyle = true // local stand-ins have no bucket subdomains
		}
	})
	return &Store{client: client, bucket: o.Bucket, limit: o.MaxBytes, log: log}
}

// Folders are one conversation's folders on disk.
type Folders struct {
	Config string // its CLAUDE_CONFIG_DIR: the session transcript
	Work   string // its working directory
}

func (f Folders) each(fn func(name, dir string) error) error {
	return errors.Join(fn("config", f.Config), fn("work", f.Work))
}

func prefix(userID string) string { return "users/" + userID + "/" }
func key(userID, convID, name string) string {
	return path.Join(prefix(userID)+"conversations", convID, name+".tar.gz")
}

// Save uploads both folders. A folder above the cap is skipped with a
// warning (the next turn on a fresh environment then starts without it).
func (s *Store) Save(ctx context.Context, userID, convID string, f Folders) error {
	return f.each(func(name, dir string) error {
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if n, err := size(dir, s.limit); errors.Is(err, errTooLarge) {
			s.log.WarnContext(ctx, "workspace: folder above the cap, not saved", "folder", name, "limitBytes", s.limit)
			return nil
		} else if err != nil {
			return fmt.Errorf("workspace: measure %s: %w", name, err)
		} else if n == 0 && name == "work" {
			// An empty working folder needs no copy; delete any older one.
			return s.deleteKey(ctx, key(userID, convID, name))
		}
		return s.upload(ctx, key(userID, convID, name), dir)
	})
}

// upload packs dir into a temporary file (bounded memory, and a seekable
// body the SDK can sign) and puts it.
func (s *Store) upload(ctx context.Context, k, dir string) error {
	tmp, err := os.CreateTemp("", "workspace-*.tar.gz")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := pack(tmp, dir); err != nil {
		return fmt.Errorf("workspace: pack: %w", err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	_, err = s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(k), Body: tmp,
		ContentType: aws.String("application/gzip"),
	})
	if err != nil {
		return fmt.Errorf("workspace: put %s: %w", path.Base(k), err)
	}
	return nil
}

// Restore downloads the folders that are missing locally. A folder that
// was never saved is not an error.
func (s *Store) Restore(ctx context.Context, userID, convID string, f Folders) error {
	return f.each(func(name, dir string) error {
		if _, err := os.Stat(dir); err == nil {
			return nil // this environment has it already
		}
		return s.download(ctx, key(userID, convID, name), dir)
	})
}

func (s *Store) download(ctx context.Context, k, dir string) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(k)})
	var missing *types.NoSuchKey
	if errors.As(err, &missing) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("workspace: get %s: %w", path.Base(k), err)
	}
	defer out.Body.Close()
	// Into a fresh folder beside the target, renamed when complete: a
	// failed restore never leaves half a folder that looks present.
	tmp := dir + ".restoring"
	_ = os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return err
	}
	if err := unpack(out.Body, tmp, 2*s.limit); err != nil {
		_ = os.RemoveAll(tmp)
		return err
	}
	return os.Rename(tmp, dir)
}

// DeleteConversation removes a conversation's saved folders.
func (s *Store) DeleteConversation(ctx context.Context, userID, convID string) error {
	return errors.Join(s.deleteKey(ctx, key(userID, convID, "config")), s.deleteKey(ctx, key(userID, convID, "work")))
}

// DeleteUser removes everything saved for a user.
func (s *Store) DeleteUser(ctx context.Context, userID string, _ []string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*opTimeout)
	defer cancel()
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(prefix(userID))})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("workspace: list: %w", err)
		}
		for _, o := range page.Contents {
			if err := s.deleteKey(ctx, aws.ToString(o.Key)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Store) deleteKey(ctx context.Context, k string) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(k)})
	if err != nil {
		return fmt.Errorf("workspace: delete %s: %w", path.Base(k), err)
	}
	return nil
}

// EnsureBucket creates the bucket if missing: local runs and tests only; in
// AWS the bucket belongs to the stack.
func (s *Store) EnsureBucket(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)})
	if err == nil {
		return nil
	}
	_, err = s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.bucket)})
	return err
}
