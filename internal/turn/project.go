package turn

import (
	"context"
	"os"
	"sync"
	"time"

	"github.com/ovrlrd/cloud/internal/claude"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// defaultTimeout bounds the read of a user's default project.
const defaultTimeout = 5 * time.Second

// defaultProject starts the read of the default project of a new
// conversation that names none, and returns what waits for it, to be
// called once: the project's id, or "" for none (a failed read is logged
// and counts as none, so the turn still runs, in an empty folder).
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
			return v
		case <-ctx.Done():
			return ""
		}
	}
}

// prepare makes the folder of a project conversation's first turn (one with
// nothing saved yet, or an imported one whose project has no checkout) a
// checkout of its project. When it cannot, the turn ends here, before the
// CLI, with what went wrong: a revoked token, a deleted project, a
// repository above the limit. A clone can take a while: meanwhile the lease
// is renewed and the client pinged as while the CLI runs, and a cancel, a
// deletion or a lost lease stops it.
func (s *Service) prepare(ctx context.Context, j ovrlrd.Turn, out *outbox, fallback func() string, renewed *time.Time) (end ending, stopped error, ok bool) {
	if s.cfg.Projects == nil || (j.Workspace != "" || j.ClaudeSessionID != "") && !j.Checkout {
		return ending{}, nil, true
	}
	if j.ProjectID == "" {
		if j.ProjectID = fallback(); j.ProjectID == "" {
			return ending{}, nil, true
		}
	}
	work, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := make(chan error, 1)
	var watched sync.WaitGroup
	watched.Go(func() { s.watch(work, j, stop, renewed) })
	defer watched.Wait()
	done := make(chan error, 1)
	go func() { done <- s.cfg.Projects.Prepare(work, j, s.folders(j.ConversationID).Work) }()
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	var err error
	for waiting := true; waiting; {
		select {
		case err = <-done:
			waiting = false
		case <-ping.C:
			out.send(pingEvent)
		case reason := <-stop:
			stopped = reason
			cancel()
		}
	}
	cancel()
	folder := s.folders(j.ConversationID).Work
	if stopped == nil && j.Checkout && ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
		// An imported conversation whose project was deleted goes on
		// without it, in its folder as restored, rather than failing each
		// turn: its session is all it had, and a claim on it blocks
		// another import.
		if _, serr := os.Stat(folder); serr == nil {
			s.log.WarnContext(ctx, "an imported conversation's project is gone: the turn runs without a checkout")
			return ending{}, nil, true
		}
	}
	if stopped != nil || err != nil {
		// What the clone left is the project's, not yet the turn's: its
		// release would not see it.
		_ = os.RemoveAll(folder)
	}
	switch {
	case stopped != nil:
		return ending{outcome: failed(failureMessage(stopped, claude.Exit{}))}, stopped, false
	case err == nil:
		return ending{}, nil, true
	}
	s.log.WarnContext(ctx, "project checkout failed", "err", err)
	if ovrlrd.ErrorCode(err) != ovrlrd.EINTERNAL {
		return ending{outcome: failed(ovrlrd.ErrorMessage(err))}, nil, false
	}
	return ending{outcome: failed("Could not prepare the project's files. Please try again.")}, nil, false
}
