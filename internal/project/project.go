// Package project is a user's git project: its token, sealed under the
// stack's KMS key and checked against the repository before it is kept; the
// checkout a conversation's first turn works in; and the conversation's
// changes and push. The token is opened only here, for the one fetch or
// push that needs it, and never reaches a file, the environment or a log.
package project

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/repo"
)

// Store keeps projects and attaches them to conversations.
type Store interface {
	CreateProject(ctx context.Context, p ovrlrd.Project) (ovrlrd.Project, error)
	Projects(ctx context.Context, userID string) ([]ovrlrd.Project, error)
	Project(ctx context.Context, userID, id string) (ovrlrd.Project, error)
	DefaultProject(ctx context.Context, userID string) (ovrlrd.Project, bool, error)
	UpdateProject(ctx context.Context, userID, id string, u ovrlrd.ProjectUpdate) (ovrlrd.Project, error)
	DeleteProject(ctx context.Context, userID, id string) error
	AttachProject(ctx context.Context, userID, convID, holder string, p ovrlrd.Project, base string) (ovrlrd.Conversation, error)

	Conversation(ctx context.Context, userID, convID string) (ovrlrd.Conversation, error)
	AcquireRun(ctx context.Context, convID, holder string, lease time.Duration) error
	ReleaseRun(ctx context.Context, convID, holder string) error
}

// Sealer seals and opens tokens (envelope.Sealer).
type Sealer interface {
	Seal(ctx context.Context, plaintext []byte, encCtx map[string]string) ([]byte, error)
	Open(ctx context.Context, blob []byte, encCtx map[string]string) ([]byte, error)
}

// Files keeps git directories and project caches beyond one environment
// (workspace.Store).
type Files interface {
	SaveGit(ctx context.Context, userID, convID, dir string) error
	RestoreGit(ctx context.Context, userID, convID, dir string) error
	SaveProjectCache(ctx context.Context, userID, projectID, dir string) error
	RestoreProjectCache(ctx context.Context, userID, projectID, dir string) error
	DeleteProject(ctx context.Context, userID, projectID string) error
	RestoreWork(ctx context.Context, userID, convID, version, dir string) error
}

// Options configure a Service.
type Options struct {
	Store  Store
	Sealer Sealer
	Files  Files
	// MaxBytes bounds a project's pack; WorkMaxBytes its checked-out
	// files, which the conversation's folder must be able to keep.
	MaxBytes, WorkMaxBytes int64
	// CABundle and AllowLoopback are the local stage's: its git server.
	CABundle      []byte
	AllowLoopback bool
	Log           *slog.Logger
}

// Service is what the routes and the turns do with projects.
type Service struct{ o Options }

// New returns a Service.
func New(o Options) *Service { return &Service{o: o} }

// encryption binds a sealed token to its user and project: a blob copied
// to another project's item cannot be opened there.
func encryption(userID, projectID string) map[string]string {
	return map[string]string{"purpose": "ovrlrd git token", "userId": userID, "projectId": projectID}
}

func (s *Service) remote(url, token string) repo.Remote {
	return repo.Remote{URL: url, Token: token, CABundle: s.o.CABundle, AllowLoopback: s.o.AllowLoopback}
}

// Create checks that the token reads the repository (one listing of its
// references), seals the token and keeps the project. The branch defaults
// to the repository's own default.
func (s *Service) Create(ctx context.Context, userID string, in ovrlrd.NewProject) (ovrlrd.Project, error) {
	if !ovrlrd.ValidProjectName(in.Name) {
		return ovrlrd.Project{}, ovrlrd.Errorf(ovrlrd.EINVALID, "A project name must be 1 to %d characters, without a slash.", ovrlrd.MaxProjectName)
	}
	if err := repo.CheckURL(in.RepoURL); err != nil {
		return ovrlrd.Project{}, err
	}
	branch, err := repo.Check(ctx, s.remote(in.RepoURL, in.Token), in.Branch)
	if err != nil {
		return ovrlrd.Project{}, err
	}
	p := ovrlrd.Project{ID: uuid.NewString(), UserID: userID, Name: in.Name, RepoURL: in.RepoURL, Branch: branch, Default: in.Default}
	if p.Token, err = s.seal(ctx, userID, p.ID, in.Token); err != nil {
		return ovrlrd.Project{}, err
	}
	return s.o.Store.CreateProject(ctx, p)
}

func (s *Service) seal(ctx context.Context, userID, projectID, token string) ([]byte, error) {
	if token == "" {
		return nil, nil
	}
	blob, err := s.o.Sealer.Seal(ctx, []byte(token), encryption(userID, projectID))
	if err != nil {
		return nil, ovrlrd.Wrap(ovrlrd.EUNAVAILABLE, "Could not keep the token safely. Please try again.", err)
	}
	return blob, nil
}

// token opens p's token; "" for a project without one.
func (s *Service) token(ctx context.Context, p ovrlrd.Project) (string, error) {
	if len(p.Token) == 0 {
		return "", nil
	}
	plain, err := s.o.Sealer.Open(ctx, p.Token, encryption(p.UserID, p.ID))
	if err != nil {
		return "", ovrlrd.Wrap(ovrlrd.EUNAVAILABLE, "Could not read the project's token. Please try again.", err)
	}
	return string(plain), nil
}

// List returns the user's projects; never nil.
func (s *Service) List(ctx context.Context, userID string) ([]ovrlrd.Project, error) {
	return s.o.Store.Projects(ctx, userID)
}

// DefaultProject returns the user's default project, if any.
func (s *Service) DefaultProject(ctx context.Context, userID string) (ovrlrd.Project, bool, error) {
	return s.o.Store.DefaultProject(ctx, userID)
}

// Update changes a project. A new token is checked against the repository
// before it replaces the old one.
func (s *Service) Update(ctx context.Context, userID, id string, u ovrlrd.ProjectChange) (ovrlrd.Project, error) {
	up := ovrlrd.ProjectUpdate{Name: u.Name, Label: u.Label, Default: u.Default}
	if u.Token != nil {
		p, err := s.o.Store.Project(ctx, userID, id)
		if err != nil {
			return ovrlrd.Project{}, err
		}
		if _, err := repo.Check(ctx, s.remote(p.RepoURL, *u.Token), p.Branch); err != nil {
			return ovrlrd.Project{}, err
		}
		if up.Token, err = s.seal(ctx, userID, id, *u.Token); err != nil {
			return ovrlrd.Project{}, err
		}
		if up.Token == nil {
			up.Token = []byte{} // removes it
		}
	}
	return s.o.Store.UpdateProject(ctx, userID, id, up)
}

// Delete deletes a project and its cache; its conversations keep their
// own copies. A cache that cannot be deleted now is left to the bucket's
// expiry.
func (s *Service) Delete(ctx context.Context, userID, id string) error {
	if err := s.o.Store.DeleteProject(ctx, userID, id); err != nil {
		return err
	}
	if err := s.o.Files.DeleteProject(ctx, userID, id); err != nil {
		s.o.Log.WarnContext(ctx, "project cache not deleted", "err", err)
	}
	return nil
}
