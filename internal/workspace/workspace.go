// Package workspace keeps what the Claude Code CLI leaves on disk for a
// conversation (its session transcript and the conversation's working
// folder) in S3, so a turn that lands on a fresh Lambda execution
// environment still resumes the conversation. /tmp is per environment;
// the bucket is not.
package workspace

import (
	"context"
	"crypto/rand"
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
	client   *s3.Client
	presign  *s3.PresignClient
	bucket   string
	limit    int64 // bytes per folder; larger ones are not saved
	gitLimit int64 // bytes per git archive (folders.go)
}

// Options configure a Store.
type Options struct {
	Bucket   string
	Endpoint string // a local S3 stand-in; empty in AWS
	MaxBytes int64
	// GitMaxBytes caps one git archive (a project's object store); 0
	// means MaxBytes.
	GitMaxBytes int64
	// UploadCredentials, if set, sign presigned uploads instead of the
	// client's own: a local server's are its S3 stand-in's secret.
	UploadCredentials aws.CredentialsProvider
}

// opTimeout bounds one S3 request: a turn must not hang on its bucket.
const opTimeout = 20 * time.Second

// New returns a Store. It logs nothing: its errors go to the caller.
func New(cfg aws.Config, o Options, _ *slog.Logger) *Store {
	client := s3.NewFromConfig(cfg, func(so *s3.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
			so.UsePathStyle = true // local stand-ins have no bucket subdomains
		}
	})
	gitLimit := o.GitMaxBytes
	if gitLimit == 0 {
		gitLimit = o.MaxBytes
	}
	presign := s3.NewPresignClient(client, func(po *s3.PresignOptions) {
		if o.UploadCredentials != nil {
			po.ClientOptions = append(po.ClientOptions, func(so *s3.Options) { so.Credentials = o.UploadCredentials })
		}
	})
	return &Store{client: client, presign: presign, bucket: o.Bucket, limit: o.MaxBytes, gitLimit: gitLimit}
}

// Folders are one conversation's folders on disk.
type Folders struct {
	Config string // its CLAUDE_CONFIG_DIR: the session transcript
	Work   string // its working directory
}

func (f Folders) each(fn func(name, dir string) error) error {
	return errors.Join(fn("config", f.Config), fn("work", f.Work))
}

// Errors of Save and Restore the turn tells its user about.
var (
	// ErrTooLarge: a folder is above the cap, so the turn's folders were
	// not saved.
	ErrTooLarge = errors.New("workspace: folder larger than the cap")
	// ErrMissing: the version to restore is not in the bucket (its
	// lifecycle expired it, or it was never complete).
	ErrMissing = errors.New("workspace: saved folders not found")
)

func prefix(userID string) string { return "users/" + userID + "/" }

func convPrefix(userID, convID string) string {
	return prefix(userID) + "conversations/" + convID + "/"
}

// key is where one folder of one saved version lives. Every save writes a
// new version beside the current one, and the conversation item names the
// current one, so a save that loses its lease, or lands late, never
// overwrites what another turn saved. Version "" is the layout before
// versions, one archive per folder, still read for conversations saved then.
func key(userID, convID, version, name string) string {
	return path.Join(convPrefix(userID, convID), version, name+".tar.gz")
}

// Save uploads both folders as a new version and returns it; the caller
// records it with the turn, which makes it current. A folder above the cap
// is ErrTooLarge and nothing is uploaded. Links in the folders are saved as
// links, their targets as they are (see keepLinks), and Restore and
// RestoreWork make them again.
func (s *Store) Save(ctx context.Context, userID, convID string, f Folders) (string, error) {
	// Packed into temporary files (bounded memory, and seekable bodies the
	// SDK can sign), both before any upload, so a folder above the cap
	// uploads nothing.
	archives := map[string]*os.File{}
	defer func() {
		for _, a := range archives {
			drop(a)
		}
	}()
	err := f.each(func(name, dir string) error {
		a, err := packTemp(name, dir, s.limit, keepLinks)
		if err == nil {
			archives[name] = a
		}
		return err
	})
	if err != nil {
		return "", err
	}
	version := rand.Text()
	err = f.each(func(name, _ string) error {
		return s.put(ctx, key(userID, convID, version, name), archives[name])
	})
	if err != nil {
		// Half a version is never current; it need not stay either.
		_ = s.Discard(context.WithoutCancel(ctx), userID, convID, version)
		return "", err
	}
	return version, nil
}

// packTemp packs dir (created when missing) into a temporary file, rewound
// for the upload, which the caller drops, with its links as ls says; name
// only labels errors. A folder above limit is ErrTooLarge.
func packTemp(name, dir string, limit int64, ls links) (*os.File, error) {
	a, err := os.CreateTemp("", "workspace-*.tar.gz")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		drop(a)
		return nil, err
	}
	if err := pack(a, dir, limit, ls); err != nil {
		drop(a)
		if errors.Is(err, ErrTooLarge) {
			return nil, fmt.Errorf("%w (%s, %d bytes)", ErrTooLarge, name, limit)
		}
		return nil, fmt.Errorf("workspace: pack %s: %w", name, err)
	}
	if _, err := a.Seek(0, io.SeekStart); err != nil {
		drop(a)
		return nil, err
	}
	return a, nil
}

// drop closes and removes a temporary archive.
func drop(a *os.File) {
	a.Close()
	os.Remove(a.Name())
}

// contentType is every archive's.
const contentType = "application/gzip"

func (s *Store) put(ctx context.Context, k string, archive *os.File) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(k), Body: archive,
		ContentType: aws.String(contentType),
	})
	if err != nil {
		return fmt.Errorf("workspace: put %s: %w", path.Base(k), err)
	}
	return nil
}

// Restore replaces the local folders with the saved version: whatever this
// environment still has of the conversation may be older (another
// environment ran a turn since), so it never counts. A missing archive is
// ErrMissing, except for a folder of the layout before versions, which was
// not saved when empty.
func (s *Store) Restore(ctx context.Context, userID, convID, version string, f Folders) error {
	return f.each(func(name, dir string) error {
		return s.restoreFolder(ctx, userID, convID, version, name, dir)
	})
}

// restoreFolder restores one folder of a saved version, as Restore does.
func (s *Store) restoreFolder(ctx context.Context, userID, convID, version, name, dir string) error {
	err := s.replace(ctx, key(userID, convID, version, name), name, dir, s.limit, keepLinks)
	if errors.Is(err, ErrMissing) && version == "" && name == "work" {
		return nil
	}
	return err
}

// replace clears dir, then downloads the archive at k into it, with its
// links as ls says; name only labels errors, and the archive may hold twice
// limit.
func (s *Store) replace(ctx context.Context, k, name, dir string, limit int64, ls links) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("workspace: clear %s: %w", name, err)
	}
	return s.download(ctx, k, dir, limit, ls)
}

func (s *Store) download(ctx context.Context, k, dir string, limit int64, ls links) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(k)})
	if _, missing := errors.AsType[*types.NoSuchKey](err); missing {
		return fmt.Errorf("%w (%s)", ErrMissing, path.Base(k))
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
	if err := unpack(out.Body, tmp, 2*limit, ls); err != nil {
		_ = os.RemoveAll(tmp)
		return err
	}
	return os.Rename(tmp, dir)
}

// Discard deletes one saved version: the one a newer save replaced, or one
// whose turn could not record it.
func (s *Store) Discard(ctx context.Context, userID, convID, version string) error {
	return errors.Join(s.deleteKey(ctx, key(userID, convID, version, "config")), s.deleteKey(ctx, key(userID, convID, version, "work")))
}

// DeleteConversation removes every saved version of a conversation.
func (s *Store) DeleteConversation(ctx context.Context, userID, convID string) error {
	return s.deletePrefix(ctx, convPrefix(userID, convID))
}

// DeleteUser removes everything saved for a user, and their uploads.
func (s *Store) DeleteUser(ctx context.Context, userID string, _ []string) error {
	return errors.Join(s.deletePrefix(ctx, prefix(userID)), s.deletePrefix(ctx, uploadsPrefix(userID)))
}

func (s *Store) deletePrefix(ctx context.Context, p string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*opTimeout)
	defer cancel()
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(p)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
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
	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)}); err == nil {
		return nil
	}
	_, err := s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.bucket)})
	return err
}
