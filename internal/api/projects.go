package api

import (
	"context"
	"net/http"
	"slices"

	"github.com/ovrlrd/cloud/internal/auth"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// Projects is what the routes do with users' git projects.
type Projects interface {
	Create(ctx context.Context, userID string, in ovrlrd.NewProject) (ovrlrd.Project, error)
	List(ctx context.Context, userID string) ([]ovrlrd.Project, error)
	Update(ctx context.Context, userID, id string, c ovrlrd.ProjectChange) (ovrlrd.Project, error)
	Delete(ctx context.Context, userID, id string) error
	Changes(ctx context.Context, userID, convID string) (ovrlrd.Changes, error)
	Push(ctx context.Context, userID, convID string) (ovrlrd.Pushed, error)
}

// ProjectLookup finds a user's projects by id and by name: what a turn
// request and the directory routes name. Every function that begins turns
// has it, with or without the rest of Projects.
type ProjectLookup interface {
	Project(ctx context.Context, userID, id string) (ovrlrd.Project, error)
	ProjectNamed(ctx context.Context, userID, name string) (ovrlrd.Project, error)
}

// errNoProjects answers the project routes of a server without a KMS key
// (a local one), where no token could be kept safely.
var errNoProjects = ovrlrd.Errorf(ovrlrd.ENOTFOUND, "Projects are not enabled on this server.")

// projects wraps a project route: without Projects, the route is not
// there.
func (s *server) projects(next principalHandler) principalHandler {
	return func(w http.ResponseWriter, r *http.Request, p auth.Principal) {
		if s.Projects == nil {
			writeError(w, r, s.Log, errNoProjects)
			return
		}
		next(w, r, p)
	}
}

type projectBody struct {
	Name    *string `json:"name"`
	RepoURL *string `json:"repoUrl"`
	Branch  *string `json:"branch"`
	Token   *string `json:"token"`
	Default *bool   `json:"default"`
}

func (b *projectBody) Validate() error {
	switch {
	case b.Name == nil:
		return ovrlrd.Errorf(ovrlrd.EINVALID, `Field "name" is required.`)
	case b.RepoURL == nil:
		return ovrlrd.Errorf(ovrlrd.EINVALID, `Field "repoUrl" is required.`)
	}
	return nil
}

type projectResponse struct {
	Project ovrlrd.Project `json:"project"`
}

type projectsResponse struct {
	Projects []ovrlrd.Project `json:"projects"`
}

func deref[T any](p *T) (v T) {
	if p != nil {
		v = *p
	}
	return v
}

// createProject is POST /projects: 201 once the token has read the
// repository.
func (s *server) createProject(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	var body projectBody
	if s.failed(w, r, Decode(r, &body)) {
		return
	}
	pr, err := s.Projects.Create(r.Context(), p.UserID, ovrlrd.NewProject{
		Name: *body.Name, RepoURL: *body.RepoURL, Branch: deref(body.Branch), Token: deref(body.Token), Default: deref(body.Default),
	})
	if !s.failed(w, r, err) {
		WriteJSON(w, http.StatusCreated, projectResponse{Project: pr})
	}
}

func (s *server) listProjects(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	ps, err := s.Projects.List(r.Context(), p.UserID)
	s.reply(w, r, err, projectsResponse{Projects: ps})
}

type projectPatch struct {
	Name    *string `json:"name"`
	Label   *string `json:"label"`
	Token   *string `json:"token"`
	Default *bool   `json:"default"`
}

func (b *projectPatch) Validate() error { return nil }

func (s *server) updateProject(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	var body projectPatch
	if s.failed(w, r, Decode(r, &body)) {
		return
	}
	pr, err := s.Projects.Update(r.Context(), p.UserID, r.PathValue("id"), ovrlrd.ProjectChange(body))
	s.reply(w, r, err, projectResponse{Project: pr})
}

func (s *server) deleteProject(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	s.reply(w, r, s.Projects.Delete(r.Context(), p.UserID, r.PathValue("id")), successResponse{Success: true})
}

func (s *server) changes(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	c, err := s.Projects.Changes(r.Context(), p.UserID, r.PathValue("id"))
	s.reply(w, r, err, c)
}

// push is POST /chat/{id}/push: 409 while a turn runs, or when the branch
// moved on the server (it is never forced).
func (s *server) push(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	pushed, err := s.Projects.Push(r.Context(), p.UserID, r.PathValue("id"))
	s.reply(w, r, err, pushed)
}

// directory is a project as the directory picker's proposal shows one:
// its name is the path a turn's workDir names.
type directory struct {
	Path        string            `json:"path"`
	Label       *string           `json:"label"`
	ProjectID   string            `json:"projectId"`
	Default     bool              `json:"default"`
	AccessCount int               `json:"accessCount"`
	LastUsed    *ovrlrd.Timestamp `json:"lastUsed"`
	CreatedAt   ovrlrd.Timestamp  `json:"createdAt"`
}

type directoriesResponse struct {
	Directories []directory `json:"directories"`
}

// directories is GET /chat/directories: the user's projects, most
// recently used first, then the unused ones, oldest first.
func (s *server) directories(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	ps, err := s.Projects.List(r.Context(), p.UserID)
	out := directoriesResponse{Directories: []directory{}}
	for _, pr := range ps {
		out.Directories = append(out.Directories, directory{
			Path: pr.Name, Label: pr.Label, ProjectID: pr.ID, Default: pr.Default,
			AccessCount: pr.AccessCount, LastUsed: pr.LastUsed, CreatedAt: pr.CreatedAt,
		})
	}
	slices.SortStableFunc(out.Directories, func(a, b directory) int {
		switch {
		case a.LastUsed == nil || b.LastUsed == nil:
			return boolOrder(a.LastUsed == nil, b.LastUsed == nil)
		}
		return b.LastUsed.Time().Compare(a.LastUsed.Time())
	})
	s.reply(w, r, err, out)
}

// boolOrder sorts false before true.
func boolOrder(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

type labelBody struct {
	Label *string `json:"label"`
}

func (b *labelBody) Validate() error {
	if b.Label == nil {
		return ovrlrd.Errorf(ovrlrd.EINVALID, `Field "label" is required.`)
	}
	return nil
}

// labelDirectory is POST /chat/directories/{path}/label; an empty label
// removes it.
func (s *server) labelDirectory(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	var body labelBody
	if s.failed(w, r, Decode(r, &body)) {
		return
	}
	pr, err := s.ProjectLookup.ProjectNamed(r.Context(), p.UserID, r.PathValue("path"))
	if err == nil {
		_, err = s.Projects.Update(r.Context(), p.UserID, pr.ID, ovrlrd.ProjectChange{Label: body.Label})
	}
	s.reply(w, r, err, successResponse{Success: true})
}

// deleteDirectory is DELETE /chat/directories/{path}: a directory is a
// project, so removing it from the picker deletes the project (its
// conversations keep their copies).
func (s *server) deleteDirectory(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	pr, err := s.ProjectLookup.ProjectNamed(r.Context(), p.UserID, r.PathValue("path"))
	if err == nil {
		err = s.Projects.Delete(r.Context(), p.UserID, pr.ID)
	}
	s.reply(w, r, err, successResponse{Success: true})
}
