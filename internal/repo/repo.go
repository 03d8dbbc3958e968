// Package repo is the git side of a project: check a user's repository,
// clone one branch into a conversation's working copy, commit, and push the
// conversation's own branch. Everything goes over HTTPS with a fine-grained
// token that lives only in memory: go-git sends it as basic auth per
// request and never writes it to .git/config, the environment or a log.
package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// Remote is a repository and the token that reaches it.
type Remote struct {
	URL, Token    string
	CABundle      []byte // extra trusted roots; tests only
	AllowLoopback bool   // the local stage, whose git server is on 127.0.0.1
}

// defaultTimeout bounds a network call whose caller set no deadline, so a
// stalled server cannot hold a Lambda until it is killed.
const defaultTimeout = 2 * time.Minute

func (r Remote) auth() *githttp.BasicAuth {
	// Hosts take any username with a token; GitHub documents this one.
	return &githttp.BasicAuth{Username: "x-access-token", Password: r.Token}
}

// begin validates the branches and the URL, installs the guarded
// transport, and returns the context every network call runs under.
func (r Remote) begin(ctx context.Context, branches ...string) (context.Context, context.CancelFunc, error) {
	for _, b := range branches {
		if err := checkBranch(b); err != nil {
			return nil, nil, err
		}
	}
	if err := CheckURL(r.URL); err != nil {
		return nil, nil, err
	}
	install()
	cancel := context.CancelFunc(func() {})
	if _, ok := ctx.Deadline(); !ok {
		ctx, cancel = context.WithTimeout(ctx, defaultTimeout)
	}
	return withPolicy(ctx, r.AllowLoopback), cancel, nil
}

// CheckURL accepts only plain https URLs with a host: no credentials (the
// token is kept apart), and nothing a later string join could misread.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case raw == "" || err != nil:
		return ovrlrd.Errorf(ovrlrd.EINVALID, "The repository URL is not a valid URL.")
	case u.Scheme != "https":
		return ovrlrd.Errorf(ovrlrd.EINVALID, "The repository URL must start with https://.")
	case u.User != nil:
		return ovrlrd.Errorf(ovrlrd.EINVALID, "The repository URL must not contain a user name or password; the token is given separately.")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(raw, "?#"):
		return ovrlrd.Errorf(ovrlrd.EINVALID, "The repository URL must not contain a query or a fragment.")
	case u.Hostname() == "":
		return ovrlrd.Errorf(ovrlrd.EINVALID, "The repository URL must name a host.")
	}
	return nil
}

// userError turns a go-git error into a message for the user; the cause
// (URLs without credentials, never the token) is kept for logs only.
func userError(err error, access string) error {
	switch _, domain := errors.AsType[*ovrlrd.Error](err); {
	case err == nil:
		return nil
	case domain:
		return err
	case errors.Is(err, errRefused):
		return ovrlrd.Wrap(ovrlrd.EINVALID, "The repository's address is not allowed.", err)
	case errors.Is(err, transport.ErrAuthenticationRequired), errors.Is(err, transport.ErrAuthorizationFailed):
		return ovrlrd.Wrap(ovrlrd.EINVALID, "The token cannot "+access+" this repository.", err)
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return ovrlrd.Wrap(ovrlrd.EINVALID, "The repository was not found.", err)
	case errors.Is(err, transport.ErrEmptyRemoteRepository):
		return ovrlrd.Wrap(ovrlrd.EINVALID, "The repository is empty.", err)
	}
	return ovrlrd.Wrap(ovrlrd.EINVALID, "The repository cannot be reached.", err)
}

func checkBranch(name string) error {
	if name == "" || plumbing.NewBranchReferenceName(name).Validate() != nil {
		return ovrlrd.Errorf(ovrlrd.EINVALID, "%q is not a valid branch name.", name)
	}
	return nil
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
	remote := git.NewRemote(nil, &config.RemoteConfig{Name: "origin", URLs: []string{r.URL}})
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: r.auth(), CABundle: r.CABundle})
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

// Clone fetches branch alone, without tags, into dir, which must be absent
// or empty; on failure dir is removed, so no partial copy is left behind.
// The received pack may hold at most maxBytes.
func Clone(ctx context.Context, r Remote, branch, dir string, maxBytes int64) (err error) {
	ctx, cancel, err := r.begin(ctx, branch)
	if err != nil {
		return err
	}
	defer cancel()
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("repo: clone into %s: directory not empty", dir)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	st := &limitedStorage{
		Storage: filesystem.NewStorage(osfs.New(filepath.Join(dir, git.GitDirName)), cache.NewObjectLRUDefault()),
		max:     maxBytes,
	}
	_, err = git.CloneContext(ctx, st, osfs.New(dir), &git.CloneOptions{
		URL:           r.URL,
		Auth:          r.auth(),
		CABundle:      r.CABundle,
		ReferenceName: plumbing.NewBranchReferenceName(branch),
		SingleBranch:  true,
		Tags:          git.NoTags,
	})
	if st.exceeded {
		return ovrlrd.Wrap(ovrlrd.EINVALID, "The repository is larger than the limit of "+size(maxBytes)+".", err)
	}
	if err != nil {
		return userError(err, "read")
	}
	return noCredentials(dir)
}

// noCredentials asserts what go-git promises: auth stays in memory, and the
// remote URL it records is the bare one.
func noCredentials(dir string) error {
	repo, err := git.PlainOpen(dir)
	if err != nil {
		return err
	}
	cfg, err := repo.Config()
	if err != nil {
		return err
	}
	for _, rc := range cfg.Remotes {
		for _, raw := range rc.URLs {
			if u, err := url.Parse(raw); err != nil || u.User != nil {
				return errors.New("repo: a remote URL in .git/config holds credentials")
			}
		}
	}
	return nil
}

func size(n int64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%d MB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
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
		return 0, errors.New("repo: pack exceeds the size limit")
	}
	return w.WriteCloser.Write(p)
}

// StartBranch creates branch name at HEAD and checks it out, keeping any
// changes in the working tree.
func StartBranch(dir, name string) error {
	if err := checkBranch(name); err != nil {
		return err
	}
	wt, err := worktree(dir)
	if err != nil {
		return err
	}
	return wt.Checkout(&git.CheckoutOptions{Branch: plumbing.NewBranchReferenceName(name), Create: true, Keep: true})
}

func worktree(dir string) (*git.Worktree, error) {
	repo, err := git.PlainOpen(dir)
	if err != nil {
		return nil, err
	}
	return repo.Worktree()
}

// Commit stages every change, deletions included, and commits them. It
// reports committed=false, and no error, when there was nothing to commit.
func Commit(dir, message, authorName, authorEmail string) (hash string, committed bool, err error) {
	wt, err := worktree(dir)
	if err != nil {
		return "", false, err
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		return "", false, err
	}
	sig := &object.Signature{Name: authorName, Email: authorEmail, When: time.Now()}
	h, err := wt.Commit(message, &git.CommitOptions{Author: sig, Committer: sig})
	if errors.Is(err, git.ErrEmptyCommit) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return h.String(), true, nil
}

// Push sends branch, and only branch, to the same name on the remote. It
// never forces: a remote branch that moved is a conflict for the user.
func Push(ctx context.Context, r Remote, dir, branch string) error {
	ctx, cancel, err := r.begin(ctx, branch)
	if err != nil {
		return err
	}
	defer cancel()
	repo, err := git.PlainOpen(dir)
	if err != nil {
		return err
	}
	ref := plumbing.NewBranchReferenceName(branch).String()
	err = repo.PushContext(ctx, &git.PushOptions{
		RemoteName: git.DefaultRemoteName,
		RemoteURL:  r.URL,
		RefSpecs:   []config.RefSpec{config.RefSpec(ref + ":" + ref)},
		Auth:       r.auth(),
		CABundle:   r.CABundle,
	})
	switch {
	case err == nil, errors.Is(err, git.NoErrAlreadyUpToDate):
		return nil
	case errors.Is(err, git.ErrForceNeeded), strings.Contains(err.Error(), "non-fast-forward"),
		strings.Contains(err.Error(), "fetch first"):
		return ovrlrd.Wrap(ovrlrd.ECONFLICT, fmt.Sprintf("The branch %q changed on the server; it was not overwritten.", branch), err)
	}
	return userError(err, "push to")
}
