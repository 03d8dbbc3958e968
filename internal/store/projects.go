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
	Label     string `dynamo:"label,omitempty"`
	Uses      int    `dynamo:"accessCount,omitempty"`
	LastUsed  int64  `dynamo:"lastUsed,omitempty"`
	CreatedAt int64  `dynamo:"createdAt"`
	UpdatedAt int64  `dynamo:"updatedAt"`
}

// projNameItem holds a project's name, PK USER#<uid>, SK PROJNAME#<name>:
// written in the transaction that creates or renames the project, on the
// condition that it does not exist, it keeps names unique per user, so a
// name (the directory routes' path) finds one project.
type projNameItem struct {
	itemKey
	ProjectID string `dynamo:"projectId"`
}

const projNamePrefix = "PROJNAME#"

func projectNameKey(userID, name string) (string, string) {
	return userPK(userID), projNamePrefix + name
}

// projMetaItem is a user's project count and default, PK USER#<uid>, SK
// PROJECTS. It has no GSI1 keys, so no list shows it.
type projMetaItem struct {
	itemKey
	Count     int    `dynamo:"projectCount"`
	DefaultID string `dynamo:"defaultId,omitempty"`
}

func (it projItem) project(userID, defaultID string) ovrlrd.Project {
	p := ovrlrd.Project{
		ID: it.ID, UserID: userID, Name: it.Name, RepoURL: it.RepoURL, Branch: it.Branch,
		Token: it.Token, HasToken: len(it.Token) > 0, Default: it.ID == defaultID, AccessCount: it.Uses,
		CreatedAt: ovrlrd.Timestamp(timeOf(it.CreatedAt)), UpdatedAt: ovrlrd.Timestamp(timeOf(it.UpdatedAt)),
	}
	if it.Label != "" {
		p.Label = &it.Label
	}
	if it.LastUsed != 0 {
		at := ovrlrd.Timestamp(timeOf(it.LastUsed))
		p.LastUsed = &at
	}
	return p
}

// errProjectNotFound is the one answer for a missing, foreign or malformed
// id: the caller must not learn which case it was.
var (
	errProjectNotFound = ovrlrd.Errorf(ovrlrd.ENOTFOUND, "Project not found.")
	errTooManyProjects = ovrlrd.Errorf(ovrlrd.ECONFLICT, "You already have %d projects. Delete one to add another.", ovrlrd.MaxProjects)
	errProjectName     = ovrlrd.Errorf(ovrlrd.EINVALID, "A project name must be 1 to %d characters.", ovrlrd.MaxProjectName)
	errProjectToken    = ovrlrd.Errorf(ovrlrd.EINVALID, "The project's token is too long.")
	errProjectLabel    = ovrlrd.Errorf(ovrlrd.EINVALID, "A label must be at most %d characters, without control characters.", ovrlrd.MaxProjectName)
	errProjectNameUsed = ovrlrd.Errorf(ovrlrd.ECONFLICT, "You already have a project with that name.")
)

func projectKey(userID, id string) (string, string) { return userPK(userID), projPrefix + id }

// projMeta reads userID's project count and default; none yet is the zero
// item.
func (s *Store) projMeta(ctx context.Context, userID string) (projMetaItem, error) {
	var meta projMetaItem
	err := s.get(ctx, "get project count", userPK(userID), skProjects, &meta, nil)
	return meta, err
}

// CreateProject creates a project for p.UserID with id p.ID (a new one if
// empty), its name unique among the user's projects (ECONFLICT), in one
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
	id := cmp.Or(p.ID, uuid.NewString())
	if !isID(id) {
		return ovrlrd.Project{}, ovrlrd.Errorf(ovrlrd.EINVALID, "A project id must be a UUID.")
	}
	now := s.nowMillis()
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
			Put(s.table.Put(it).If("attribute_not_exists($)", attrPK)).
			Put(s.nameItem(p.UserID, p.Name, id)), nil
	}, errAccountDeleted, errTooManyProjects, nil, errProjectNameUsed)
	if err != nil {
		return ovrlrd.Project{}, err
	}
	defaultID := ""
	if p.Default {
		defaultID = id
	}
	return it.project(p.UserID, defaultID), nil
}

// nameItem claims name for project id, on the condition that no project
// of the user holds it.
func (s *Store) nameItem(userID, name, id string) *dynamo.Put {
	pk, sk := projectNameKey(userID, name)
	return s.table.Put(projNameItem{itemKey: itemKey{pk, sk}, ProjectID: id}).If("attribute_not_exists($)", attrPK)
}

// ProjectNamed returns userID's project called name; ENOTFOUND if none.
func (s *Store) ProjectNamed(ctx context.Context, userID, name string) (ovrlrd.Project, error) {
	if userID == "" || !ovrlrd.ValidProjectName(name) {
		return ovrlrd.Project{}, errProjectNotFound
	}
	var it projNameItem
	pk, sk := projectNameKey(userID, name)
	if err := s.get(ctx, "get project name", pk, sk, &it, errProjectNotFound); err != nil {
		return ovrlrd.Project{}, err
	}
	return s.Project(ctx, userID, it.ProjectID)
}

// projRow is any item of a user's project partition: a project, a name,
// or the count and default, told apart by their sort keys.
type projRow struct {
	projItem
	DefaultID string `dynamo:"defaultId"`
}

// projectsOf reads userID's projects and default in one Query: every item
// whose sort key starts with PROJ.
func (s *Store) projectsOf(ctx context.Context, userID string) ([]projItem, string, error) {
	var rows []projRow
	err := s.table.Get(attrPK, userPK(userID)).Range(attrSK, dynamo.BeginsWith, "PROJ").
		Consistent(true).All(ctx, &rows)
	if err != nil {
		return nil, "", dbError("list projects", err)
	}
	var (
		items     []projItem
		defaultID string
	)
	for _, r := range rows {
		switch {
		case r.SK == skProjects:
			defaultID = r.DefaultID
		case strings.HasPrefix(r.SK, projPrefix):
			items = append(items, r.projItem)
		}
	}
	slices.SortFunc(items, func(a, b projItem) int {
		return cmp.Or(cmp.Compare(a.CreatedAt, b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	return items, defaultID, nil
}

// Projects lists userID's projects, oldest first (ties by id); never nil,
// so it encodes as [].
func (s *Store) Projects(ctx context.Context, userID string) ([]ovrlrd.Project, error) {
	out := []ovrlrd.Project{}
	if userID == "" {
		return out, nil
	}
	items, defaultID, err := s.projectsOf(ctx, userID)
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		out = append(out, it.project(userID, defaultID))
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
// none. It is one round trip: a new conversation asks before its first
// turn runs.
func (s *Store) DefaultProject(ctx context.Context, userID string) (ovrlrd.Project, bool, error) {
	if userID == "" {
		return ovrlrd.Project{}, false, nil
	}
	items, defaultID, err := s.projectsOf(ctx, userID)
	if err != nil {
		return ovrlrd.Project{}, false, err
	}
	for _, it := range items {
		if it.ID == defaultID {
			return it.project(userID, defaultID), true, nil
		}
	}
	return ovrlrd.Project{}, false, nil
}

// UpdateProject changes what u gives of project id (see ProjectUpdate).
// Nothing given returns the project as it is. A missing, foreign or
// malformed id is ENOTFOUND; a name another project has is ECONFLICT.
func (s *Store) UpdateProject(ctx context.Context, userID, id string, u ovrlrd.ProjectUpdate) (ovrlrd.Project, error) {
	switch {
	case userID == "" || !isID(id):
		return ovrlrd.Project{}, errProjectNotFound
	case u.Name != nil && !ovrlrd.ValidProjectName(*u.Name):
		return ovrlrd.Project{}, errProjectName
	case u.Label != nil && !ovrlrd.ValidLabel(*u.Label):
		return ovrlrd.Project{}, errProjectLabel
	case len(u.Token) > maxProjectToken:
		return ovrlrd.Project{}, errProjectToken
	case u.Name == nil && u.Label == nil && u.Token == nil && u.Default == nil:
		return s.Project(ctx, userID, id)
	}
	pk, sk := projectKey(userID, id)
	now := s.nowMillis()
	err := s.runTxOf(ctx, "update project", func(error) (*dynamo.WriteTx, []error, error) {
		cur, err := s.Project(ctx, userID, id)
		if err != nil {
			return nil, nil, err
		}
		// The name read above must still be the project's: a concurrent
		// rename fails this and the transaction is built again.
		up := s.table.Update(attrPK, pk).Range(attrSK, sk).Set("updatedAt", now).
			If("attribute_exists($) AND 'name' = ?", attrPK, cur.Name)
		tx := s.db.WriteTx().Check(s.accountOpen(userID)).Update(up)
		failed := []error{errAccountDeleted, errLostRace}
		if u.Name != nil && *u.Name != cur.Name {
			up.Set("name", *u.Name)
			opk, osk := projectNameKey(userID, cur.Name)
			tx.Delete(s.table.Delete(attrPK, opk).Range(attrSK, osk)).Put(s.nameItem(userID, *u.Name, id))
			failed = append(failed, nil, errProjectNameUsed)
		}
		switch {
		case u.Label == nil:
		case *u.Label == "":
			up.Remove("label")
		default:
			up.Set("label", *u.Label)
		}
		switch {
		case u.Token == nil:
		case len(u.Token) == 0:
			up.Remove("token")
		default:
			up.Set("token", slices.Clone(u.Token))
		}
		meta := s.table.Update(attrPK, userPK(userID)).Range(attrSK, skProjects)
		switch {
		case u.Default == nil:
		case *u.Default:
			// The project's own condition makes sure it still exists.
			tx.Update(meta.Set(attrProjDefault, id))
		case cur.Default:
			// Cleared only if it is still this one; a concurrent change
			// fails the condition and the transaction is built again.
			tx.Update(meta.Remove(attrProjDefault).If("$ = ?", attrProjDefault, id))
			failed = append(failed, errLostRace)
		}
		return tx, failed, nil
	})
	if err != nil {
		return ovrlrd.Project{}, err
	}
	return s.Project(ctx, userID, id)
}

// DeleteProject deletes project id and its name, in one transaction with
// the user's count and, if it was the default, with the default, which it
// clears. A missing, foreign or malformed id is ENOTFOUND.
func (s *Store) DeleteProject(ctx context.Context, userID, id string) error {
	if userID == "" || !isID(id) {
		return errProjectNotFound
	}
	pk, sk := projectKey(userID, id)
	return s.runTx(ctx, "delete project", func(error) (*dynamo.WriteTx, error) {
		cur, err := s.Project(ctx, userID, id)
		if err != nil {
			return nil, err
		}
		meta := s.table.Update(attrPK, userPK(userID)).Range(attrSK, skProjects).Add(attrProjCount, -1)
		// Whether it is the default is decided on a fresh read; a change of
		// the default since fails the condition and the transaction is built
		// again.
		if cur.Default {
			meta.Remove(attrProjDefault).If("$ = ?", attrProjDefault, id)
		} else {
			meta.If("attribute_not_exists($) OR $ <> ?", attrProjDefault, attrProjDefault, id)
		}
		npk, nsk := projectNameKey(userID, cur.Name)
		return s.db.WriteTx().Check(s.accountOpen(userID)).
			Delete(s.table.Delete(attrPK, pk).Range(attrSK, sk).If("attribute_exists($) AND 'name' = ?", attrPK, cur.Name)).
			Update(meta).
			Delete(s.table.Delete(attrPK, npk).Range(attrSK, nsk)), nil
	}, errAccountDeleted, errLostRace, errLostRace)
}

// AttachProject fixes p as the project of conversation convID, on the
// branch of its own, and counts a use of p, in one transaction that the
// turn holding the lease (holder) runs before its first CLI; base, once
// the checkout is ready, is the commit the branch starts from ("" for none
// yet). Attaching the conversation's own project again (with its base, or
// on a first turn tried again) records the base and counts nothing more.
func (s *Store) AttachProject(ctx context.Context, userID, convID, holder string, p ovrlrd.Project, base string) (ovrlrd.Conversation, error) {
	if userID == "" || !isID(convID) || !isID(p.ID) || holder == "" {
		return ovrlrd.Conversation{}, errProjectNotFound
	}
	c, err := s.Conversation(ctx, userID, convID)
	switch {
	case err != nil:
		return ovrlrd.Conversation{}, err
	case c.ProjectID != p.ID && c.Base != "":
		return ovrlrd.Conversation{}, ovrlrd.ErrOtherProject
	}
	branch, workDir := ovrlrd.ProjectBranch(convID), p.Name
	if c.ProjectID == p.ID && c.WorkDir != "" {
		workDir = c.WorkDir // the name it had when the conversation began
	}
	ppk, psk := projectKey(userID, p.ID)
	err = s.runTx(ctx, "attach project", func(error) (*dynamo.WriteTx, error) {
		tx := s.db.WriteTx().
			Check(s.table.Check(attrPK, convPrefix+convID).Range(attrSK, runSK).If("'holder' = ?", holder)).
			Update(s.table.Update(attrPK, userPK(userID)).Range(attrSK, convPrefix+convID).
				Set("projectId", p.ID).Set("branch", branch).Set("workDir", workDir).Set("base", base).
				// Another project only while nothing was checked out.
				If("attribute_exists($) AND (attribute_not_exists('base') OR 'projectId' = ?)", attrPK, p.ID))
		if c.ProjectID == p.ID {
			return tx.Check(s.table.Check(attrPK, ppk).Range(attrSK, psk).If("attribute_exists($)", attrPK)), nil
		}
		return tx.Update(s.table.Update(attrPK, ppk).Range(attrSK, psk).If("attribute_exists($)", attrPK).
			Add("accessCount", 1).Set("lastUsed", s.nowMillis())), nil
	}, ovrlrd.ErrLeaseLost, ovrlrd.ErrOtherProject, errProjectNotFound)
	if err != nil {
		return ovrlrd.Conversation{}, err
	}
	c.ProjectID, c.Branch, c.WorkDir, c.Base = p.ID, branch, workDir, base
	return c, nil
}
