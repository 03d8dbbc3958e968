package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// remote is never saved: the URL comes from the caller on every call, so
// nothing in gitDir's config decides where the server connects.
func (r Remote) remote(st storage.Storer) *git.Remote {
	return git.NewRemote(st, &config.RemoteConfig{Name: git.DefaultRemoteName, URLs: []string{r.URL}})
}

// Check lists the remote's references once. It returns the remote's default
// branch when branch is "", and otherwise makes sure branch exists.
func Check(ctx context.Context, r Remote, branch string) (string, error) {
	var named []string // "" asks for the default branch
	if branch != "" {
		named = append(named, branch)
	}
	ctx, cancel, err := r.begin(ctx, named...)
	if err != nil {
		return "", err
	}
	defer cancel()
	refs, err := r.remote(nil).ListContext(ctx, &git.ListOptions{Auth: r.auth(), CABundle: r.CABundle})
	if err != nil {
		return "", userError(err, "read")
	}
	want := plumbing.NewBranchReferenceName(branch)
	for _, ref := range refs {
		switch {
		case branch == "" && ref.Name() == plumbing.HEAD && ref.Type() == plumbing.SymbolicReference:
			return ref.Target().Short(), nil
		case branch != "" && ref.Name() == want:
			return branch, nil
		}
	}
	if branch == "" {
		return "", ovrlrd.Errorf(ovrlrd.EINVALID, "The repository has no default branch.")
	}
	return "", ovrlrd.Errorf(ovrlrd.EINVALID, "The repository has no branch %q.", branch)
}

// Fetch brings branch, and only it, without tags, from the remote into
// gitDir and returns its commit. An absent or empty gitDir is initialised
// (and removed again, or emptied, if the fetch fails); one holding a
// repository, such as a cached copy of the project, receives only what it
// lacks. The received pack may hold at most maxBytes.
func Fetch(ctx context.Context, r Remote, gitDir, branch string, maxBytes int64) (commit string, err error) {
	ctx, cancel, err := r.begin(ctx, branch)
	if err != nil {
		return "", err
	}
	defer cancel()
	st := &limitedStorage{Storage: gitStorage(gitDir), max: maxBytes}
	undo, err := claim(gitDir, 0o700)
	switch {
	case errors.Is(err, errNotEmpty):
		_, err = git.Open(st, nil)
	case err == nil:
		defer func() {
			if err != nil {
				undo()
			}
		}()
		_, err = git.Init(st, nil)
	}
	if err != nil {
		return "", err
	}

	tracking := plumbing.NewRemoteReferenceName(git.DefaultRemoteName, branch)
	spec := config.RefSpec("+" + plumbing.NewBranchReferenceName(branch).String() + ":" + tracking.String())
	err = r.remote(st).FetchContext(ctx, &git.FetchOptions{
		RefSpecs: []config.RefSpec{spec},
		Auth:     r.auth(),
		CABundle: r.CABundle,
		Tags:     git.NoTags,
	})
	switch {
	case st.exceeded:
		return "", ovrlrd.Wrap(ovrlrd.EINVALID, "The repository is larger than the limit of "+size(maxBytes)+".", errTooLarge)
	case errors.Is(err, git.NoMatchingRefSpecError{}):
		return "", ovrlrd.Errorf(ovrlrd.EINVALID, "The repository has no branch %q.", branch)
	case err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate):
		return "", userError(err, "read")
	}
	if err := noCredentials(st.Storage); err != nil {
		return "", err
	}
	ref, err := st.Reference(tracking)
	if err != nil {
		return "", err
	}
	return ref.Hash().String(), nil
}

// noCredentials asserts what go-git promises: auth stays in memory, and no
// remote URL in gitDir's config carries any.
func noCredentials(st *filesystem.Storage) error {
	cfg, err := st.Config()
	if err != nil {
		return err
	}
	for _, rc := range cfg.Remotes {
		for _, raw := range rc.URLs {
			if u, err := url.Parse(raw); err != nil || u.User != nil {
				return errors.New("repo: a remote URL in the git config holds credentials")
			}
		}
	}
	return nil
}

// limitedStorage counts the pack go-git streams into the object store and
// fails the write past max. go-git insists on an *http.Transport of its own
// when a CABundle is set, so the response body cannot be wrapped there; the
// pack writer sees the same bytes, demultiplexed, and its error aborts the
// transfer.
type limitedStorage struct {
	*filesystem.Storage
	max, n   int64
	exceeded bool
}

func (s *limitedStorage) PackfileWriter() (io.WriteCloser, error) {
	w, err := s.Storage.PackfileWriter()
	if err != nil {
		return nil, err
	}
	return &limitedWriter{WriteCloser: w, s: s}, nil
}

type limitedWriter struct {
	io.WriteCloser
	s *limitedStorage
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	if w.s.n += int64(len(p)); w.s.n > w.s.max {
		w.s.exceeded = true
		return 0, errTooLarge
	}
	return w.WriteCloser.Write(p)
}

// errConflict is the cause logged for a push the remote would not take as
// a fast-forward; the remote's own words stay out of the log.
var errConflict = errors.New("repo: the remote branch is not an ancestor of the pushed one")

// Push sends branch, and only branch, from gitDir to the same name on the
// remote. It never forces: a remote branch that moved is a conflict for
// the user.
func Push(ctx context.Context, r Remote, gitDir, branch string) error {
	if err := checkOwnBranch(branch); err != nil {
		return err
	}
	ctx, cancel, err := r.begin(ctx, branch)
	if err != nil {
		return err
	}
	defer cancel()
	st := gitStorage(gitDir)
	if _, err := git.Open(st, nil); err != nil {
		return err
	}
	ref := plumbing.NewBranchReferenceName(branch).String()
	err = r.remote(st).PushContext(ctx, &git.PushOptions{
		RefSpecs: []config.RefSpec{config.RefSpec(ref + ":" + ref)},
		Auth:     r.auth(),
		CABundle: r.CABundle,
	})
	switch {
	case err == nil, errors.Is(err, git.NoErrAlreadyUpToDate):
		return nil
	case errors.Is(err, git.ErrForceNeeded), strings.Contains(err.Error(), "non-fast-forward"),
		strings.Contains(err.Error(), "fetch first"):
		return ovrlrd.Wrap(ovrlrd.ECONFLICT, fmt.Sprintf("The branch %q changed on the server; it was not overwritten.", branch), errConflict)
	}
	return userError(err, "push to")
}
