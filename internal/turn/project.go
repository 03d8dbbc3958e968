package turn

import (
	"context"
	"time"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// defaultTimeout bounds the read of a user's default project.
const defaultTimeout = 5 * time.Second

// defaultProject starts the read of the default project of a new
// conversation that names none, and returns what waits for it: the
// project's id, or "" for none (a failed read is logged and counts as
// none, so the turn still runs, in an empty folder).
func (s *Service) defaultProject(ctx context.Context, j ovrlrd.Turn) func() string {
	if s.cfg.Projects == nil || !j.New || j.ProjectID != "" {
		return func() string { return "" }
	}
	id := make(chan string, 1)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
		defer cancel()
		p, ok, err := s.cfg.Projects.DefaultProject(ctx, j.UserID)
		if err != nil {
			s.log.WarnContext(ctx, "default project not read", "err", err)
		}
		if !ok {
			p.ID = ""
		}
		id <- p.ID
	}()
	return func() string {
		select {
		case v := <-id:
			id <- v // for a second call
			return v
		case <-ctx.Done():
			return ""
		}
	}
}

// prepare makes the folder of a project conversation's first turn (one with
// nothing saved yet) a checkout of its project. When it cannot, the turn
// ends here, before the CLI, with what went wrong: a revoked token, a
// deleted project, a repository above the limit.
func (s *Service) prepare(ctx context.Context, j ovrlrd.Turn, fallback func() string) (ending, bool) {
	if s.cfg.Projects == nil || j.Workspace != "" || j.ClaudeSessionID != "" {
		return ending{}, true
	}
	if j.ProjectID == "" {
		if j.ProjectID = fallback(); j.ProjectID == "" {
			return ending{}, true
		}
	}
	err := s.cfg.Projects.Prepare(ctx, j, s.folders(j.ConversationID).Work)
	if err == nil {
		return ending{}, true
	}
	s.log.WarnContext(ctx, "project checkout failed", "err", err)
	if ovrlrd.ErrorCode(err) != ovrlrd.EINTERNAL {
		return ending{outcome: failed(ovrlrd.ErrorMessage(err))}, false
	}
	return ending{outcome: failed("Could not prepare the project's files. Please try again.")}, false
}
