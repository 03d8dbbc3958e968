package repo

import (
	"errors"
	"fmt"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/index"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// Checkout creates branch, which must not exist yet, at commit in gitDir and
// writes its files into workDir, which must be absent or empty. On failure
// it takes back what it added: the branch, HEAD's move, and the files.
func Checkout(gitDir, workDir, commit, branch string, maxBytes int64) (err error) {
	if err := checkOwnBranch(branch); err != nil {
		return err
	}
	h, err := parseHash(commit)
	if err != nil {
		return err
	}
	st := gitStorage(gitDir)
	repo, err := git.Open(st, nil)
	if err != nil {
		return err
	}
	c, err := repo.CommitObject(h)
	if err != nil {
		return err
	}
	tree, err := c.Tree()
	if err != nil {
		return err
	}
	if err := fits(tree, maxBytes); err != nil {
		return err
	}
	name := plumbing.NewBranchReferenceName(branch)
	switch _, err := st.Reference(name); {
	case err == nil:
		return fmt.Errorf("repo: branch %q exists", branch)
	case !errors.Is(err, plumbing.ErrReferenceNotFound):
		return err
	}
	head, err := st.Reference(plumbing.HEAD)
	if err != nil {
		return err
	}
	undo, err := claim(workDir, 0o755)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			undo()
			st.RemoveReference(name)
			st.SetReference(head)
		}
	}()
	// An index restored with a cached gitDir describes some other checkout.
	if err := st.SetIndex(&index.Index{Version: 2}); err != nil {
		return err
	}
	return inTree(st, workDir, func(_ *git.Repository, wt *git.Worktree) error {
		return wt.Checkout(&git.CheckoutOptions{Hash: h, Branch: name, Create: true, Force: true})
	})
}

// fits refuses a tree whose files add up to more than limit bytes, before
// any is written: a pack of a few kilobytes can expand to gigabytes.
func fits(tree *object.Tree, limit int64) error {
	var total int64
	err := tree.Files().ForEach(func(f *object.File) error {
		if total += f.Size; total > limit {
			return errTooLarge
		}
		return nil
	})
	if errors.Is(err, errTooLarge) {
		return ovrlrd.Wrap(ovrlrd.EINVALID, "The repository's files are larger than the limit of "+size(limit)+".", errTooLarge)
	}
	return err
}

// Commit stages every change in workDir, deletions included, and commits
// it on the current branch, which must be a conversation branch. It
// reports committed=false, and no error, when there was nothing to commit.
func Commit(gitDir, workDir, message, authorName, authorEmail string) (hash string, committed bool, err error) {
	st := gitStorage(gitDir)
	head, err := st.Reference(plumbing.HEAD)
	if err != nil {
		return "", false, err
	}
	if head.Type() != plumbing.SymbolicReference || !head.Target().IsBranch() {
		return "", false, ovrlrd.Errorf(ovrlrd.EINVALID, "The working copy is not on a branch.")
	}
	if err := checkOwnBranch(head.Target().Short()); err != nil {
		return "", false, err
	}
	sig := &object.Signature{Name: authorName, Email: authorEmail, When: time.Now()}
	var h plumbing.Hash
	err = inTree(st, workDir, func(_ *git.Repository, wt *git.Worktree) (err error) {
		h, err = commitAll(wt, message, sig, false)
		return err
	})
	switch {
	case errors.Is(err, git.ErrEmptyCommit):
		return "", false, nil
	case err != nil:
		return "", false, err
	}
	return h.String(), true, nil
}

// Head is the commit gitDir's HEAD is at, whether or not the last Commit
// had anything to commit.
func Head(gitDir string) (string, error) {
	ref, err := storer.ResolveReference(gitStorage(gitDir), plumbing.HEAD)
	if err != nil {
		return "", err
	}
	return ref.Hash().String(), nil
}

// commitAll is the one way a working tree becomes a commit, for Commit and
// for Changes alike: stage everything, deletions included, honouring
// .gitignore, then commit the index.
func commitAll(wt *git.Worktree, message string, sig *object.Signature, allowEmpty bool) (plumbing.Hash, error) {
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		return plumbing.ZeroHash, err
	}
	return wt.Commit(message, &git.CommitOptions{Author: sig, Committer: sig, AllowEmptyCommits: allowEmpty})
}
