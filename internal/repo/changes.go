package repo

import (
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/index"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/utils/merkletrie"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

var statuses = map[merkletrie.Action]string{
	merkletrie.Insert: "added", merkletrie.Modify: "modified", merkletrie.Delete: "deleted",
}

// Changes compares the working tree, as Commit would commit it now, with
// the commit base, without moving any branch, HEAD or the index. The patch
// is cut at a line end within maxDiff bytes. The answer names its base; its
// branch is the caller's to fill in.
func Changes(gitDir, workDir, base string, maxDiff int) (ovrlrd.Changes, error) {
	from, err := parseHash(base)
	if err != nil {
		return ovrlrd.Changes{}, err
	}
	var d ovrlrd.Changes
	err = inTree(&scratch{Storage: gitStorage(gitDir)}, workDir, func(repo *git.Repository, wt *git.Worktree) error {
		baseCommit, err := repo.CommitObject(from)
		if err != nil {
			return err
		}
		sig := &object.Signature{Name: "ovrlrd", When: time.Unix(0, 0)}
		h, err := commitAll(wt, "", sig, true)
		if err != nil {
			return err
		}
		now, err := repo.CommitObject(h)
		if err != nil {
			return err
		}
		a, err := baseCommit.Tree()
		if err != nil {
			return err
		}
		b, err := now.Tree()
		if err != nil {
			return err
		}
		changes, err := object.DiffTree(a, b)
		if err != nil {
			return err
		}
		d, err = diff(changes, maxDiff)
		return err
	})
	d.Base = base
	return d, err
}

func diff(changes object.Changes, limit int) (ovrlrd.Changes, error) {
	d := ovrlrd.Changes{Files: make([]ovrlrd.FileChange, 0, len(changes))}
	var patch strings.Builder
	for _, ch := range changes {
		action, err := ch.Action()
		if err != nil {
			return ovrlrd.Changes{}, err
		}
		name := ch.To.Name
		if action == merkletrie.Delete {
			name = ch.From.Name
		}
		d.Files = append(d.Files, ovrlrd.FileChange{Path: name, Status: statuses[action]})
		if d.Truncated {
			continue // no point diffing what will not be shown
		}
		p, err := ch.Patch()
		if err != nil {
			return ovrlrd.Changes{}, err
		}
		text := p.String()
		if room := max(limit-patch.Len(), 0); len(text) > room {
			text, d.Truncated = text[:room], true
			text = text[:strings.LastIndexByte(text, '\n')+1]
		}
		patch.WriteString(text)
	}
	d.Diff = patch.String()
	return d, nil
}

// scratch is gitDir's storage with the index kept in memory and reference
// updates dropped, so Changes stages and commits exactly as Commit does
// while nothing but unreferenced objects reaches gitDir.
type scratch struct {
	*filesystem.Storage
	idx *index.Index
}

func (s *scratch) Index() (*index.Index, error) {
	if s.idx == nil {
		return s.Storage.Index()
	}
	return s.idx, nil
}

func (s *scratch) SetIndex(idx *index.Index) error                     { s.idx = idx; return nil }
func (s *scratch) SetReference(*plumbing.Reference) error              { return nil }
func (s *scratch) CheckAndSetReference(_, _ *plumbing.Reference) error { return nil }
