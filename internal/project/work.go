package project

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/repo"
	"github.com/ovrlrd/cloud/internal/workspace"
)

// MaxDiff bounds the diff GET /chat/{id}/changes returns.
const MaxDiff = 256 << 10

// The author of the commits a push makes for the user.
const (
	authorName  = "Ovrlrd"
	authorEmail = "ovrlrd@users.noreply.invalid"
)

// cacheHead names, in a project's cached git directory, the commit the
// cache was saved at, so a fetch that brought nothing new saves nothing.
const cacheHead = "ovrlrd-cache-head"

// Prepare makes workDir, the working folder of a conversation's first turn,
// a checkout of the turn's project on the conversation's own branch, keeps
// the server's git directory of it in S3, and attaches the project to the
// conversation. The git directory never lies in workDir: tools cannot
// touch what a later push reads as git's own. Its errors are the user's to
// read: a revoked token ends the turn here, before the CLI starts.
func (s *Service) Prepare(ctx context.Context, j ovrlrd.Turn, workDir string) error {
	p, err := s.o.Store.Project(ctx, j.UserID, j.ProjectID)
	if err != nil {
		return err
	}
	// Attached first, so a first turn that fails or is cancelled leaves
	// the project to the conversation's next turn; the base follows once
	// the checkout is ready.
	if _, err := s.o.Store.AttachProject(ctx, j.UserID, j.ConversationID, j.Holder, p, ""); err != nil {
		return err
	}
	token, err := s.token(ctx, p)
	if err != nil {
		return err
	}
	gitDir, err := os.MkdirTemp("", "ovrlrd-git-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(gitDir)
	cached, commit, err := s.fetch(ctx, p, token, gitDir)
	if err != nil {
		return err
	}
	if commit != cached {
		s.saveCache(ctx, p, gitDir, commit)
	}
	// A first turn has nothing in its folder worth keeping.
	if err := os.RemoveAll(workDir); err != nil {
		return err
	}
	if err := repo.Checkout(gitDir, workDir, commit, ovrlrd.ProjectBranch(j.ConversationID), s.o.WorkMaxBytes); err != nil {
		return err
	}
	if err := s.o.Files.SaveGit(ctx, j.UserID, j.ConversationID, gitDir); err != nil {
		return s.keepError(err)
	}
	_, err = s.o.Store.AttachProject(ctx, j.UserID, j.ConversationID, j.Holder, p, commit)
	return err
}

// fetch brings p's branch into gitDir, from the project's cache when there
// is one (so only what is new comes over the network), and returns the
// commit the cache was saved at ("" without one) and the fetched one. A
// cache the fetch cannot use is dropped, and the project fetched afresh.
func (s *Service) fetch(ctx context.Context, p ovrlrd.Project, token, gitDir string) (cached, commit string, err error) {
	restored := false
	switch err := s.o.Files.RestoreProjectCache(ctx, p.UserID, p.ID, gitDir); {
	case err == nil:
		restored = true
		head, _ := os.ReadFile(filepath.Join(gitDir, cacheHead))
		cached = strings.TrimSpace(string(head))
	case !errors.Is(err, workspace.ErrMissing):
		s.o.Log.WarnContext(ctx, "project cache not restored", "err", err)
	}
	if !restored {
		if err := os.RemoveAll(gitDir); err != nil {
			return "", "", err
		}
	}
	remote := s.remote(p.RepoURL, token)
	commit, err = repo.Fetch(ctx, remote, gitDir, p.Branch, s.o.MaxBytes)
	if err != nil && restored && ctx.Err() == nil {
		s.o.Log.WarnContext(ctx, "fetching into the project cache failed; fetching afresh", "err", err)
		if err := os.RemoveAll(gitDir); err != nil {
			return "", "", err
		}
		cached = ""
		commit, err = repo.Fetch(ctx, remote, gitDir, p.Branch, s.o.MaxBytes)
	}
	return cached, commit, err
}

// saveCache keeps gitDir, fetched at commit, as p's cache. One above the
// archive's cap is deleted instead, so the next conversation fetches
// afresh rather than from a cache that keeps growing.
func (s *Service) saveCache(ctx context.Context, p ovrlrd.Project, gitDir, commit string) {
	err := os.WriteFile(filepath.Join(gitDir, cacheHead), []byte(commit), 0o600)
	if err == nil {
		err = s.o.Files.SaveProjectCache(ctx, p.UserID, p.ID, gitDir)
	}
	if errors.Is(err, workspace.ErrTooLarge) {
		err = errors.Join(err, s.o.Files.DeleteProject(ctx, p.UserID, p.ID))
	}
	if err != nil {
		s.o.Log.WarnContext(ctx, "project cache not saved", "err", err)
	}
}

// keepError is what the user reads when a git directory cannot be kept.
func (s *Service) keepError(err error) error {
	if errors.Is(err, workspace.ErrTooLarge) {
		return ovrlrd.Wrap(ovrlrd.EINVALID, fmt.Sprintf("The repository is larger than the limit of %d MB.", s.o.MaxBytes>>20), err)
	}
	return ovrlrd.Wrap(ovrlrd.EUNAVAILABLE, "Could not keep the project's checkout. Please try again.", err)
}

// checkout is a conversation's git directory and working folder, restored
// from S3 into folders of the server's own.
type checkout struct{ git, work string }

// open restores what a conversation's project work needs. The caller
// removes it with close.
func (s *Service) open(ctx context.Context, c ovrlrd.Conversation) (*checkout, error) {
	switch {
	case c.ProjectID == "":
		return nil, ovrlrd.Errorf(ovrlrd.ENOTFOUND, "This conversation has no project.")
	case c.Base == "" || c.Workspace == "":
		return nil, ovrlrd.Errorf(ovrlrd.ECONFLICT, "This conversation has no saved files yet. Try again once its first answer is complete.")
	}
	root, err := os.MkdirTemp("", "ovrlrd-project-")
	if err != nil {
		return nil, err
	}
	co := &checkout{git: filepath.Join(root, "git"), work: filepath.Join(root, "work")}
	err = errors.Join(
		s.o.Files.RestoreGit(ctx, c.UserID, c.ID, co.git),
		s.o.Files.RestoreWork(ctx, c.UserID, c.ID, c.Workspace, co.work),
	)
	if err != nil {
		os.RemoveAll(root)
		if errors.Is(err, workspace.ErrMissing) {
			return nil, ovrlrd.Wrap(ovrlrd.ENOTFOUND, "This conversation's files are no longer kept.", err)
		}
		return nil, ovrlrd.Wrap(ovrlrd.EUNAVAILABLE, "Could not read this conversation's files. Please try again.", err)
	}
	return co, nil
}

func (co *checkout) close() { os.RemoveAll(filepath.Dir(co.git)) }

// Changes returns the files the conversation changed against the commit
// its branch started from, with a bounded diff.
func (s *Service) Changes(ctx context.Context, userID, convID string) (ovrlrd.Changes, error) {
	c, err := s.o.Store.Conversation(ctx, userID, convID)
	if err != nil {
		return ovrlrd.Changes{}, err
	}
	co, err := s.open(ctx, c)
	if errors.Is(err, workspace.ErrMissing) {
		// A turn that ended meanwhile replaced the version read: once more,
		// with the current one.
		if c, err = s.o.Store.Conversation(ctx, userID, convID); err == nil {
			co, err = s.open(ctx, c)
		}
	}
	if err != nil {
		return ovrlrd.Changes{}, err
	}
	defer co.close()
	out, err := repo.Changes(co.git, co.work, c.Base, MaxDiff)
	out.Branch = c.Branch
	return out, err
}

// pushLease holds the conversation while a push runs: no turn changes its
// files meanwhile, and a push is refused while a turn runs.
const pushLease = ovrlrd.StartLease

// Push commits what the conversation's turns left uncommitted, with its
// title as the message, and pushes its branch, never forced.
func (s *Service) Push(ctx context.Context, userID, convID string) (ovrlrd.Pushed, error) {
	if _, err := s.o.Store.Conversation(ctx, userID, convID); err != nil {
		return ovrlrd.Pushed{}, err
	}
	holder := rand.Text()
	if err := s.o.Store.AcquireRun(ctx, convID, holder, pushLease); err != nil {
		return ovrlrd.Pushed{}, err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := s.o.Store.ReleaseRun(rctx, convID, holder); err != nil {
			s.o.Log.WarnContext(ctx, "push lease not released", "err", err)
		}
	}()
	// Read again under the lease: a turn may have saved newer files.
	c, err := s.o.Store.Conversation(ctx, userID, convID)
	if err != nil {
		return ovrlrd.Pushed{}, err
	}
	co, err := s.open(ctx, c)
	if err != nil {
		return ovrlrd.Pushed{}, err
	}
	defer co.close()
	p, err := s.o.Store.Project(ctx, userID, c.ProjectID)
	if err != nil {
		return ovrlrd.Pushed{}, err
	}
	token, err := s.token(ctx, p)
	if err != nil {
		return ovrlrd.Pushed{}, err
	}
	title := "Changes from Ovrlrd"
	if c.Title != nil {
		title = cmp.Or(strings.TrimSpace(*c.Title), title)
	}
	_, committed, err := repo.Commit(co.git, co.work, title, authorName, authorEmail)
	if err != nil {
		return ovrlrd.Pushed{}, err
	}
	head, err := repo.Head(co.git)
	if err != nil {
		return ovrlrd.Pushed{}, err
	}
	// The commit is kept with the conversation before it is pushed: a push
	// that lands unrecorded would leave the next one committing on a stale
	// branch, refused for good as not a fast-forward.
	if committed {
		if err := s.o.Files.SaveGit(ctx, userID, convID, co.git); err != nil {
			return ovrlrd.Pushed{}, ovrlrd.Wrap(ovrlrd.EUNAVAILABLE, "Could not keep the conversation's commit. Please try again.", err)
		}
	}
	if err := repo.Push(ctx, s.remote(p.RepoURL, token), co.git, c.Branch); err != nil {
		return ovrlrd.Pushed{}, err
	}
	return ovrlrd.Pushed{Branch: c.Branch, Commit: head}, nil
}
