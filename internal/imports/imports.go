// Package imports carries a session begun in the terminal into the cloud:
// its transcript is parsed (transcript), its messages written, and the file
// itself saved with the conversation's folders where the CLI looks for it,
// so the next turn resumes it with its whole context. It runs in the stream
// function, whose working folders decide where that is.
package imports

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/transcript"
	"github.com/ovrlrd/cloud/internal/workspace"
)

// Store writes an import's messages and, at its end, its conversation.
type Store interface {
	Imported(ctx context.Context, userID, sessionID string) (string, error)
	BeginImport(ctx context.Context, userID, sessionID string) (string, error)
	ImportMessages(ctx context.Context, userID, convID string, msgs []ovrlrd.ImportedMessage) error
	FinishImport(ctx context.Context, f ovrlrd.ImportFinish) (ovrlrd.Conversation, error)
	AbortImport(ctx context.Context, userID, convID string) error
}

// Files keeps a conversation's folders, and the sessions uploaded for an
// import (workspace.Store).
type Files interface {
	Save(ctx context.Context, userID, convID string, f workspace.Folders) (string, error)
	Discard(ctx context.Context, userID, convID, version string) error
	PresignUpload(ctx context.Context, userID string, size int64) (ovrlrd.Upload, error)
	Upload(ctx context.Context, userID, uploadID string, max int64) ([]byte, error)
	DeleteUpload(ctx context.Context, userID, uploadID string) error
}

// Projects finds the project an import names.
type Projects interface {
	Project(ctx context.Context, userID, id string) (ovrlrd.Project, error)
}

// Options configure a Service.
type Options struct {
	Store Store
	Files Files
	// Projects is nil on a server that keeps none (no KMS key): an import
	// naming one is refused, since no turn would check it out.
	Projects Projects
	// WorkRoot is where the turns' working folders live: the CLI looks
	// for a session under the slug of the conversation's folder there.
	WorkRoot    string
	MaxMessages int
	// MaxBytes bounds a transcript; a conversation's folder must keep it.
	MaxBytes int64
	Log      *slog.Logger
}

// Service imports sessions.
type Service struct{ o Options }

// New returns a Service.
func New(o Options) *Service {
	if o.MaxBytes <= 0 {
		o.MaxBytes = ovrlrd.MaxUploadTranscript
	}
	return &Service{o: o}
}

// batch is how many messages one ImportMessages call writes.
const batch = 500

// abortTimeout bounds the cleanup of an import that failed.
const abortTimeout = 30 * time.Second

// Upload returns where userID may upload a session of size bytes.
func (s *Service) Upload(ctx context.Context, userID string, size int64) (ovrlrd.Upload, error) {
	switch {
	case size <= 0:
		return ovrlrd.Upload{}, ovrlrd.Errorf(ovrlrd.EINVALID, `Field "size" must be a positive number of bytes.`)
	case size > s.o.MaxBytes:
		return ovrlrd.Upload{}, s.tooLarge()
	}
	u, err := s.o.Files.PresignUpload(ctx, userID, size)
	if err != nil {
		return ovrlrd.Upload{}, ovrlrd.Wrap(ovrlrd.EUNAVAILABLE, "Could not prepare the upload. Please try again.", err)
	}
	return u, nil
}

func (s *Service) tooLarge() error {
	return ovrlrd.Errorf(ovrlrd.ETOOLARGE, "A session may be at most %d bytes.", s.o.MaxBytes)
}

// Import makes a conversation of the session r names, all or nothing.
func (s *Service) Import(ctx context.Context, r ovrlrd.ImportRequest) (ovrlrd.Imported, error) {
	// Asked first: a retry of an import that ended after its client gave
	// up learns its conversation, and a second import reads nothing.
	switch conv, err := s.o.Store.Imported(ctx, r.UserID, r.SessionID); {
	case err == nil:
		return ovrlrd.Imported{}, ovrlrd.ErrImported(conv)
	case !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND):
		return ovrlrd.Imported{}, err
	}
	if len(r.Transcript) > 0 && int64(len(r.Transcript)) > s.o.MaxBytes {
		return ovrlrd.Imported{}, s.tooLarge()
	}
	var project *ovrlrd.Project
	if r.ProjectID != "" {
		if s.o.Projects == nil {
			return ovrlrd.Imported{}, ovrlrd.Errorf(ovrlrd.ENOTFOUND, "Projects are not enabled on this server.")
		}
		p, err := s.o.Projects.Project(ctx, r.UserID, r.ProjectID)
		if err != nil {
			return ovrlrd.Imported{}, err
		}
		project = &p
	}
	data := r.Transcript
	if r.UploadID != "" {
		var err error
		if data, err = s.o.Files.Upload(ctx, r.UserID, r.UploadID, s.o.MaxBytes); err != nil {
			return ovrlrd.Imported{}, err
		}
	}
	out, err := s.imp(ctx, r, data, project)
	if err == nil && r.UploadID != "" {
		if derr := s.o.Files.DeleteUpload(ctx, r.UserID, r.UploadID); derr != nil {
			s.o.Log.WarnContext(ctx, "imported upload not deleted (the bucket expires it)", "err", derr)
		}
	}
	return out, err
}

func (s *Service) imp(ctx context.Context, r ovrlrd.ImportRequest, data []byte, project *ovrlrd.Project) (out ovrlrd.Imported, err error) {
	userID, sessionID := r.UserID, r.SessionID
	sess, err := transcript.Parse(bytes.NewReader(data), sessionID, s.o.MaxMessages)
	if err != nil {
		return ovrlrd.Imported{}, err
	}
	convID, err := s.o.Store.BeginImport(ctx, userID, sessionID)
	if err != nil {
		return ovrlrd.Imported{}, err
	}
	version := ""
	defer func() {
		if err == nil {
			return
		}
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
		defer cancel()
		aerr := s.o.Store.AbortImport(actx, userID, convID)
		if version != "" {
			aerr = errors.Join(aerr, s.o.Files.Discard(actx, userID, convID, version))
		}
		if aerr != nil {
			s.o.Log.WarnContext(ctx, "failed import not cleaned up", "err", aerr)
		}
	}()
	for i := 0; i < len(sess.Messages); i += batch {
		if err = s.o.Store.ImportMessages(ctx, userID, convID, sess.Messages[i:min(i+batch, len(sess.Messages))]); err != nil {
			return ovrlrd.Imported{}, err
		}
	}
	if version, err = s.save(ctx, userID, convID, sessionID, data); err != nil {
		return ovrlrd.Imported{}, err
	}
	title := cmp.Or(r.Title, sess.Title)
	msgs := sess.Messages
	_, err = s.o.Store.FinishImport(ctx, ovrlrd.ImportFinish{
		UserID: userID, ConversationID: convID, SessionID: sessionID, Title: title, Workspace: version, Project: project,
		Messages: len(msgs), CreatedAt: msgs[0].CreatedAt, UpdatedAt: msgs[len(msgs)-1].CreatedAt,
	})
	if err != nil {
		return ovrlrd.Imported{}, err
	}
	out = ovrlrd.Imported{ConversationID: convID, MessageCount: len(msgs)}
	if title != "" {
		out.Title = &title
	}
	return out, nil
}

// save keeps the transcript as the conversation's first saved folders: in
// its CLI config folder, under the slug of the working folder its turns
// run in, with an empty working folder beside it.
func (s *Service) save(ctx context.Context, userID, convID, sessionID string, data []byte) (string, error) {
	root, err := os.MkdirTemp("", "ovrlrd-import-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(root)
	// The CLI slugs the folder getcwd reports: with links resolved.
	workRoot, err := filepath.EvalSymlinks(s.o.WorkRoot)
	if err != nil {
		return "", err
	}
	f := workspace.Folders{Config: filepath.Join(root, "config"), Work: filepath.Join(root, "work")}
	path, err := transcript.Path(f.Config, filepath.Join(workRoot, convID), sessionID)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return "", err
	}
	version, err := s.o.Files.Save(ctx, userID, convID, f)
	if errors.Is(err, workspace.ErrTooLarge) {
		return "", ovrlrd.Wrap(ovrlrd.ETOOLARGE, "The session is larger than a conversation may keep.", err)
	}
	if err != nil {
		return "", ovrlrd.Wrap(ovrlrd.EUNAVAILABLE, "Could not keep the session. Please try again.", fmt.Errorf("imports: save: %w", err))
	}
	return version, nil
}
