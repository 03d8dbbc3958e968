package workspace

import (
	"context"
	"fmt"
	"strings"
)

// A conversation that works on a user's project keeps two more folders in
// the bucket, packed like the others: its server-only git directory (object
// store and refs, apart from the tools' working folder), and, per project, a
// cache of the project's git objects, so a later conversation fetches only
// what is new. Each is one archive, replaced by every save; both lie under
// the user's prefix, so DeleteUser removes them, and a conversation's git
// directory under its own, so DeleteConversation does.

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

// RestoreGit replaces dir with the conversation's saved git directory;
// ErrMissing when there is none.
func (s *Store) RestoreGit(ctx context.Context, userID, convID, dir string) error {
	if err := checkIDs(userID, convID); err != nil {
		return err
	}
	return s.replace(ctx, gitKey(userID, convID), "git", dir, s.gitLimit)
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
	return s.replace(ctx, cacheKey(userID, projectID), "project cache", dir, s.gitLimit)
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

// saveOne packs dir, then uploads it to k: nothing is uploaded unless the
// whole folder packed within limit.
func (s *Store) saveOne(ctx context.Context, k, name, dir string, limit int64) error {
	a, err := packTemp(name, dir, limit)
	if err != nil {
		return err
	}
	defer drop(a)
	return s.put(ctx, k, a)
}
