package workspace

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// A conversation that works on a user's project keeps two more folders in
// the bucket, packed like the others: its server-only git directory (object
// store and refs, apart from the tools' working folder), and, per project, a
// cache of the project's git objects, so a later conversation fetches only
// what is new. Each is one archive, replaced by every save; both lie under
// the user's prefix, so DeleteUser removes them, and a conversation's git
// directory under its own, so DeleteConversation does. The git directory is
// written less often than the conversation's folders, so TouchGit keeps it
// from expiring before them.

func gitKey(userID, convID string) string { return convPrefix(userID, convID) + "git.tar.gz" }

func projectPrefix(userID, projectID string) string {
	return prefix(userID) + "projects/" + projectID + "/"
}

func cacheKey(userID, projectID string) string {
	return projectPrefix(userID, projectID) + "cache.tar.gz"
}

// checkIDs refuses an id that could name another key than its own: the
// callers pass ids the server made, but a key must never depend on that.
func checkIDs(ids ...string) error {
	for _, id := range ids {
		if id == "" || id == "." || strings.Contains(id, "/") || strings.Contains(id, "..") {
			return fmt.Errorf("workspace: id %q cannot name a key", id)
		}
	}
	return nil
}

// SaveGit uploads dir as the conversation's git directory, replacing the
// previous one. One above the git cap is ErrTooLarge and uploads nothing.
func (s *Store) SaveGit(ctx context.Context, userID, convID, dir string) error {
	if err := checkIDs(userID, convID); err != nil {
		return err
	}
	return s.saveOne(ctx, gitKey(userID, convID), "git", dir, s.gitLimit)
}

// TouchGit renews the age of the conversation's saved git directory, which
// the bucket's lifecycle rule counts from its last write, as it counts a
// working folder's: that one is saved every turn, the git directory only at
// the first turn and after a push, so a conversation in use for months
// without a push would otherwise lose its git directory while keeping its
// files. The object is copied onto itself by the bucket (its metadata
// replaced, which S3 needs for such a copy, with the same content type), so
// nothing is downloaded or uploaded here; ErrMissing when there is none.
// It is for the turn that holds the conversation, like SaveGit: a copy
// racing a SaveGit of the same conversation could put the older archive
// back. An archive written in the last touchAfter is left as it is, by
// the copy's own condition: a turn pays one request, not a copy.
func (s *Store) TouchGit(ctx context.Context, userID, convID string) error {
	if err := checkIDs(userID, convID); err != nil {
		return err
	}
	k := gitKey(userID, convID)
	// A copy takes longer than other requests the larger the object:
	// bounded still, a turn must not hang on its bucket.
	ctx, cancel := context.WithTimeout(ctx, 3*opTimeout)
	defer cancel()
	_, err := s.client.CopyObject(ctx, &s3.CopyObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(k),
		CopySource:                  aws.String(copySource(s.bucket, k)),
		MetadataDirective:           types.MetadataDirectiveReplace,
		ContentType:                 aws.String(contentType),
		CopySourceIfUnmodifiedSince: aws.Time(time.Now().Add(-touchAfter)),
	})
	// CopyObject has no modelled NoSuchKey: the code says it.
	apiErr, _ := errors.AsType[smithy.APIError](err)
	switch {
	case apiErr != nil && apiErr.ErrorCode() == "NoSuchKey":
		return fmt.Errorf("%w (%s)", ErrMissing, path.Base(k))
	case apiErr != nil && apiErr.ErrorCode() == "PreconditionFailed":
		return nil // written recently: nothing to renew yet
	}
	if err != nil {
		return fmt.Errorf("workspace: touch %s: %w", path.Base(k), err)
	}
	return nil
}

// touchAfter is how old a git archive must be for TouchGit to renew it: far
// inside the bucket's expiry.
const touchAfter = 7 * 24 * time.Hour

// copySource is a CopyObject source: the bucket and the key, each segment
// percent-encoded but for unreserved characters, so no decoder (S3's, or
// a stand-in's reading "+" as a space) takes it for another key.
func copySource(bucket, k string) string {
	var b strings.Builder
	for i, seg := range strings.Split(bucket+"/"+k, "/") {
		if i > 0 {
			b.WriteByte('/')
		}
		for _, c := range []byte(seg) {
			switch {
			case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
				b.WriteByte(c)
			default:
				fmt.Fprintf(&b, "%%%02X", c)
			}
		}
	}
	return b.String()
}

// RestoreGit replaces dir with the conversation's saved git directory;
// ErrMissing when there is none.
func (s *Store) RestoreGit(ctx context.Context, userID, convID, dir string) error {
	if err := checkIDs(userID, convID); err != nil {
		return err
	}
	return s.replace(ctx, gitKey(userID, convID), "git", dir, s.gitLimit, noLinks)
}

// SaveProjectCache uploads dir as the project's cached git objects,
// replacing the previous ones. One above the git cap is ErrTooLarge and
// uploads nothing.
func (s *Store) SaveProjectCache(ctx context.Context, userID, projectID, dir string) error {
	if err := checkIDs(userID, projectID); err != nil {
		return err
	}
	return s.saveOne(ctx, cacheKey(userID, projectID), "project cache", dir, s.gitLimit)
}

// RestoreProjectCache replaces dir with the project's cached git objects;
// ErrMissing when there are none.
func (s *Store) RestoreProjectCache(ctx context.Context, userID, projectID, dir string) error {
	if err := checkIDs(userID, projectID); err != nil {
		return err
	}
	return s.replace(ctx, cacheKey(userID, projectID), "project cache", dir, s.gitLimit, noLinks)
}

// DeleteProject removes everything kept for a project (its cache).
func (s *Store) DeleteProject(ctx context.Context, userID, projectID string) error {
	if err := checkIDs(userID, projectID); err != nil {
		return err
	}
	return s.deletePrefix(ctx, projectPrefix(userID, projectID))
}

// RestoreWork replaces dir with only the working folder of a saved version,
// as Restore would restore it; the configuration folder is not fetched.
// Version "" is the layout before versions, where an empty working folder
// was not saved: then dir is left absent and the error is nil.
func (s *Store) RestoreWork(ctx context.Context, userID, convID, version, dir string) error {
	ids := []string{userID, convID}
	if version != "" {
		ids = append(ids, version)
	}
	if err := checkIDs(ids...); err != nil {
		return err
	}
	return s.restoreFolder(ctx, userID, convID, version, "work", dir)
}

// saveOne packs dir, leaving out its links (the folders saved this way are
// the server's own: see noLinks), then uploads it to k: nothing is uploaded
// unless the whole folder packed within limit.
func (s *Store) saveOne(ctx context.Context, k, name, dir string, limit int64) error {
	a, err := packTemp(name, dir, limit, noLinks)
	if err != nil {
		return err
	}
	defer drop(a)
	return s.put(ctx, k, a)
}
