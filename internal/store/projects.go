package store

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// A project sits under its user (SK PROJ#<id>), so a lookup by another
// user's id finds nothing and listing a user's projects is one Query. One
// projMetaItem per user (SK PROJECTS) counts the user's projects and names
// the default one: every create and delete moves the count in the same
// transaction as the project, so concurrent creates never pass
// MaxProjects, and a project becomes the default by writing its id there,
// so there is never more than one.
const (
	projPrefix = "PROJ#"
	skProjects = "PROJECTS"

	attrProjCount   = "projectCount"
	attrProjDefault = "defaultId"

	// Bounds that keep a project's item small; the app's are tighter.
	maxRepoURL      = 2048
	maxBranch       = 255
	maxProjectToken = 8 << 10
)

// projItem is a project, PK USER#<uid>, SK PROJ#<id>.
type projItem struct {
	itemKey
	ID        string `dynamo:"id"`
	Name      string `dynamo:"name"`
	RepoURL   string `dynamo:"repoUrl"`
	Branch    string `dynamo:"branch,omitempty"`
	Token     []byte `dynamo:"token,omitempty"`
	CreatedAt int64  `dynamo:"createdAt"`
	UpdatedAt int64  `dynamo:"updatedAt"`
}

// projMetaItem is a user's project count and default, PK USER#<uid>, SK
// PROJECTS. It has no GSI1 keys, so no list shows it.
type projMetaItem struct {
	itemKey
	Count     int    `dynamo:"projectCount"`
	DefaultID string `dynamo:"defaultId,omitempty"`
}

func (it projItem) project(userID, defaultID string) ovrlrd.Project {
	return ovrlrd.Project{
		ID: it.ID, UserID: userID, Name: it.Name, RepoURL: it.RepoURL, Branch: it.Branch,
		Token: it.Token, Default: it.ID == defaultID,
		CreatedAt: ovrlrd.Timestamp(timeOf(it.CreatedAt)), UpdatedAt: ovrlrd.Timestamp(timeOf(it.UpdatedAt)),
	}
}

// errProjectNotFound is the one answer for a missing, foreign or malformed
// id: the caller must not learn which case it was.
var (
	errProjectNotFound = ovrlrd.Errorf(ovrlrd.ENOTFOUND, "Project not found.")
	errTooManyProjects = ovrlrd.Errorf(ovrlrd.ECONFLICT, "You already have %d projects. Delete one to add another.", ovrlrd.MaxProjects)
	errProjectName     = ovrlrd.Errorf(ovrlrd.EINVALID, "A project name must be 1 to %d characters.", ovrlrd.MaxProjectName)
	errProjectToken    = ovrlrd.Errorf(ovrlrd.EINVALID, "The project's token is too long.")
)

func projectKey(userID, id string) (string, string) { return userPK(userID), projPrefix + id }

// projMeta reads userID's project count and default; none yet is the zero
// item.
func (s *Store) projMeta(ctx context.Context, userID string) (projMetaItem, error) {
	var meta projMetaItem
	err := s.get(ctx, "get project count", userPK(userID), skProjects, &meta, nil)
	return meta, err
}

// CreateProject creates a project for p.UserID with a new id, in one
// transaction with the user's count, which must stay within MaxProjects
// (ECONFLICT beyond), and, if p.Default, with the user's default, which it
// becomes. The account must not be being deleted.
func (s *Store) CreateProject(ctx context.Context, p ovrlrd.Project) (ovrlrd.Project, error) {
	switch {
	case p.UserID == "":
		return ovrlrd.Project{}, ovrlrd.Errorf(ovrlrd.EINVALID, "A project needs a user.")
	case !ovrlrd.ValidProjectName(p.Name):
		return ovrlrd.Project{}, errProjectName
	case p.RepoURL == "" || len(p.RepoURL) > maxRepoURL:
		return ovrlrd.Project{}, ovrlrd.Errorf(ovrlrd.EINVALID, "A project needs a repository URL of at most %d bytes.", maxRepoURL)
	case len(p.Branch) > maxBranch:
		return ovrlrd.Project{}, ovrlrd.Errorf(ovrlrd.EINVALID, "The branch name is too long.")
	case len(p.Token) > maxProjectToken:
		return ovrlrd.Project{}, errProjectToken
	}
	now := s.nowMillis()
	id := uuid.NewString()
	pk, sk := projectKey(p.UserID, id)
	it := projItem{
		itemKey: itemKey{pk, sk}, ID: id, Name: p.Name, RepoURL: p.RepoURL, Branch: p.Branch,
		Token: slices.Clone(p.Token), CreatedAt: now, UpdatedAt: now,
	}
	err := s.runTx(ctx, "create project", func(error) (*dynamo.WriteTx, error) {
		meta := s.table.Update(attrPK, userPK(p.UserID)).Range(attrSK, skProjects).
			Add(attrProjCount, 1).
			If("attribute_not_exists($) OR $ < ?", attrProjCount, attrProjCount, ovrlrd.MaxProjects)
		if p.Default {
			meta.Set(attrProjDefault, id)
		}
		return s.db.WriteTx().Check(s.accountOpen(p.UserID)).Update(meta).
			Put(s.table.Put(it).If("attribute_not_exists($)", attrPK)), nil
	}, errAccountDeleted, errTooManyProjects)
	if err != nil {
		return ovrlrd.Project{}, err
	}
	defaultID := ""
	if p.Default {
		defaultID = id
	}
	return it.project(p.UserID, defaultID), nil
}

// Projects lists userID's projects, oldest first (ties by id); never nil,
// so it encodes as [].
func (s *Store) Projects(ctx context.Context, userID string) ([]ovrlrd.Project, error) {
	out := []ovrlrd.Project{}
	if userID == "" {
		return out, nil
	}
	meta, err := s.projMeta(ctx, userID)
	if err != nil {
		return nil, err
	}
	var items []projItem
	err = s.table.Get(attrPK, userPK(userID)).Range(attrSK, dynamo.BeginsWith, projPrefix).
		Consistent(true).All(ctx, &items)
	if err != nil {
		return nil, dbError("list projects", err)
	}
	slices.SortFunc(items, func(a, b projItem) int {
		return cmp.Or(cmp.Compare(a.CreatedAt, b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	for _, it := range items {
		out = append(out, it.project(userID, meta.DefaultID))
	}
	return out, nil
}

// Project returns project id if userID owns it. Missing, foreign and
// malformed ids are all ENOTFOUND.
func (s *Store) Project(ctx context.Context, userID, id string) (ovrlrd.Project, error) {
	if userID == "" || !isID(id) {
		return ovrlrd.Project{}, errProjectNotFound
	}
	var it projItem
	pk, sk := projectKey(userID, id)
	if err := s.get(ctx, "get project", pk, sk, &it, errProjectNotFound); err != nil {
		return ovrlrd.Project{}, err
	}
	meta, err := s.projMeta(ctx, userID)
	if err != nil {
		return ovrlrd.Project{}, err
	}
	return it.project(userID, meta.DefaultID), nil
}

// DefaultProject returns userID's default project; false when there is
// none.
func (s *Store) DefaultProject(ctx context.Context, userID string) (ovrlrd.Project, bool, error) {
	if userID == "" {
		return ovrlrd.Project{}, false, nil
	}
	meta, err := s.projMeta(ctx, userID)
	if err != nil || meta.DefaultID == "" {
		return ovrlrd.Project{}, false, err
	}
	var it projItem
	pk, sk := projectKey(userID, meta.DefaultID)
	switch err := s.get(ctx, "get default project", pk, sk, &it, errProjectNotFound); {
	case ovrlrd.IsCode(err, ovrlrd.ENOTFOUND):
		// Deleted since the default was read: its delete cleared it.
		return ovrlrd.Project{}, false, nil
	case err != nil:
		return ovrlrd.Project{}, false, err
	}
	return it.project(userID, meta.DefaultID), true, nil
}

// UpdateProject changes what is given of project id: its name, its sealed
// token (empty removes it) and whether it is the default (true makes it
// the only one; false clears it if it was). Nothing given returns the
// project as it is. A missing, foreign or malformed id is ENOTFOUND.
func (s *Store) UpdateProject(ctx context.Context, userID, id string, name *string, token []byte, makeDefault *bool) (ovrlrd.Project, error) {
	switch {
	case userID == "" || !isID(id):
		return ovrlrd.Project{}, errProjectNotFound
	case name != nil && !ovrlrd.ValidProjectName(*name):
		return ovrlrd.Project{}, errProjectName
	case len(token) > maxProjectToken:
		return ovrlrd.Project{}, errProjectToken
	case name == nil && token == nil && makeDefault == nil:
		return s.Project(ctx, userID, id)
	}
	pk, sk := projectKey(userID, id)
	now := s.nowMillis()
	err := s.runTx(ctx, "update project", func(error) (*dynamo.WriteTx, error) {
		up := s.table.Update(attrPK, pk).Range(attrSK, sk).Set("updatedAt", now).If("attribute_exists($)", attrPK)
		if name != nil {
			up.Set("name", *name)
		}
		switch {
		case token == nil:
		case len(token) == 0:
			up.Remove("token")
		default:
			up.Set("token", slices.Clone(token))
		}
		tx := s.db.WriteTx().Check(s.accountOpen(userID)).Update(up)
		meta := s.table.Update(attrPK, userPK(userID)).Range(attrSK, skProjects)
		switch {
		case makeDefault == nil:
		case *makeDefault:
			// The project's own condition makes sure it still exists.
			tx.Update(meta.Set(attrProjDefault, id))
		default:
			// Cleared only if it is this one; a concurrent change of the
			// default fails the condition and the transaction is built
			// again from a fresh read.
			cur, err := s.projMeta(ctx, userID)
			if err != nil {
				return nil, err
			}
			if cur.DefaultID == id {
				tx.Update(meta.Remove(attrProjDefault).If("$ = ?", attrProjDefault, id))
			}
		}
		return tx, nil
	}, errAccountDeleted, errProjectNotFound, errLostRace)
	if err != nil {
		return ovrlrd.Project{}, err
	}
	return s.Project(ctx, userID, id)
}

// DeleteProject deletes project id, in one transaction with the user's
// count and, if it was the default, with the default, which it clears. A
// missing, foreign or malformed id is ENOTFOUND.
func (s *Store) DeleteProject(ctx context.Context, userID, id string) error {
	if userID == "" || !isID(id) {
		return errProjectNotFound
	}
	pk, sk := projectKey(userID, id)
	return s.runTx(ctx, "delete project", func(error) (*dynamo.WriteTx, error) {
		cur, err := s.projMeta(ctx, userID)
		if err != nil {
			return nil, err
		}
		meta := s.table.Update(attrPK, userPK(userID)).Range(attrSK, skProjects).Add(attrProjCount, -1)
		// Whether it is the default is decided on a fresh read; a change of
		// the default since fails the condition and the transaction is built
		// again.
		if cur.DefaultID == id {
			meta.Remove(attrProjDefault).If("$ = ?", attrProjDefault, id)
		} else {
			meta.If("attribute_not_exists($) OR $ <> ?", attrProjDefault, attrProjDefault, id)
		}
		return s.db.WriteTx().Check(s.accountOpen(userID)).
			Delete(s.table.Delete(attrPK, pk).Range(attrSK, sk).If("attribute_exists($)", attrPK)).
			Update(meta), nil
	}, errAccountDeleted, errProjectNotFound, errLostRace)
}
