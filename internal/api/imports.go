package api

import (
	"context"
	"net/http"

	"github.com/ovrlrd/cloud/internal/auth"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// Imports carries sessions begun in the terminal into the cloud.
type Imports interface {
	Upload(ctx context.Context, userID string, size int64) (ovrlrd.Upload, error)
	Import(ctx context.Context, r ovrlrd.ImportRequest) (ovrlrd.Imported, error)
}

// maxImportBody bounds what is read: Lambda's 6 MiB per invocation, which
// in AWS the event's other fields share with the body, itself escaped once
// more into the event, so a body this large never reaches the function
// there.
const maxImportBody = 6 << 20

type uploadBody struct {
	Size *int64 `json:"size"`
}

func (b *uploadBody) Validate() error {
	if b.Size == nil {
		return ovrlrd.Errorf(ovrlrd.EINVALID, `Field "size" is required.`)
	}
	return nil
}

// importUpload is POST /chat/import/uploads: a presigned PUT for a session
// too large to send inline.
func (s *server) importUpload(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	var body uploadBody
	if s.failed(w, r, Decode(r, &body)) {
		return
	}
	u, err := s.Imports.Upload(r.Context(), p.UserID, *body.Size)
	s.reply(w, r, err, u)
}

type importBody struct {
	SessionID  *string `json:"sessionId"`
	Transcript *string `json:"transcript"`
	UploadID   *string `json:"uploadId"`
	ProjectID  *string `json:"projectId"`
	Title      *string `json:"title"`
}

func (b *importBody) Validate() error {
	switch {
	case b.SessionID == nil || *b.SessionID == "":
		return ovrlrd.Errorf(ovrlrd.EINVALID, `Field "sessionId" is required.`)
	case b.UploadID != nil && *b.UploadID == "":
		return ovrlrd.Errorf(ovrlrd.EINVALID, `Field "uploadId" must not be empty.`)
	case (b.Transcript == nil) == (b.UploadID == nil):
		return ovrlrd.Errorf(ovrlrd.EINVALID, `Exactly one of "transcript" and "uploadId" is required.`)
	case b.Transcript != nil && len(*b.Transcript) > ovrlrd.MaxInlineTranscript:
		return ovrlrd.Errorf(ovrlrd.ETOOLARGE, "A transcript sent inline may be at most %d bytes; upload a larger one first (POST /chat/import/uploads).", ovrlrd.MaxInlineTranscript)
	case b.ProjectID != nil && *b.ProjectID == "":
		return ovrlrd.Errorf(ovrlrd.EINVALID, `Field "projectId" must not be empty.`)
	case b.Title != nil:
		var ok bool
		if *b.Title, ok = ovrlrd.ImportTitle(*b.Title); !ok {
			return ovrlrd.Errorf(ovrlrd.EINVALID, `Field "title" must be at most %d characters, without control characters.`, ovrlrd.MaxImportTitle)
		}
	}
	return nil
}

// importSession is POST /chat/import: 200 with the new conversation once
// every message of the session is written and its transcript kept.
func (s *server) importSession(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	var body importBody
	if s.failed(w, r, decodeUpTo(r, &body, maxImportBody)) {
		return
	}
	req := ovrlrd.ImportRequest{
		UserID: p.UserID, SessionID: *body.SessionID, UploadID: deref(body.UploadID),
		ProjectID: deref(body.ProjectID), Title: deref(body.Title),
	}
	if body.Transcript != nil {
		req.Transcript = []byte(*body.Transcript)
	}
	imported, err := s.Imports.Import(r.Context(), req)
	s.reply(w, r, err, imported)
}
