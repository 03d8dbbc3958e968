package store

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// An import writes thousands of messages, more than one transaction holds,
// so a conversation becomes visible only at its end. Until then a pending
// item in the user's partition (SK IMPORTING#<conversation id>) owns the
// messages already written: an abandoned import is found and swept through
// it (AbortImport, account deletion), and it expires on its own. A session
// imported once is claimed by an item SK IMPORTED#<session id> naming its
// conversation, written in the transaction that ends the import.
const (
	importingPrefix = "IMPORTING#"
	importedPrefix  = "IMPORTED#"
	// importWindow is how long a pending import may take before its item
	// expires; its messages stay until its user's deletion or abort.
	importWindow = 24 * time.Hour
)

type importingItem struct {
	itemKey
	SessionID string `dynamo:"sessionId"`
	TTL       int64  `dynamo:"ttl"`
}

type importedItem struct {
	itemKey
	ConversationID string `dynamo:"conversationId"`
}

var errNotImported = ovrlrd.Errorf(ovrlrd.ENOTFOUND, "Not imported.")

// Imported returns the conversation userID's import of sessionID made;
// ENOTFOUND when the session was not imported, or its conversation has
// been deleted since (the session may then be imported again).
func (s *Store) Imported(ctx context.Context, userID, sessionID string) (string, error) {
	conv, live, err := s.importClaim(ctx, userID, sessionID)
	if err == nil && !live {
		err = errNotImported
	}
	return conv, err
}

// importClaim reads the claim on sessionID and whether its conversation
// still exists.
func (s *Store) importClaim(ctx context.Context, userID, sessionID string) (conv string, live bool, err error) {
	if !isID(sessionID) {
		return "", false, errNotImported // names no item, and may be too long a key
	}
	var it importedItem
	if err := s.get(ctx, "get import", userPK(userID), importedPrefix+sessionID, &it, errNotImported); err != nil {
		return "", false, err
	}
	switch _, err := s.Conversation(ctx, userID, it.ConversationID); {
	case err == nil:
		return it.ConversationID, true, nil
	case ovrlrd.IsCode(err, ovrlrd.ENOTFOUND):
		return it.ConversationID, false, nil
	default:
		return "", false, err
	}
}

// BeginImport reserves a conversation id for userID's import of sessionID
// and records the import as pending. A session imported already is
// ErrImported, naming its conversation.
func (s *Store) BeginImport(ctx context.Context, userID, sessionID string) (string, error) {
	if !isID(userID) || !isID(sessionID) {
		return "", ovrlrd.Errorf(ovrlrd.EINVALID, "The session id must be a UUID.")
	}
	switch conv, live, err := s.importClaim(ctx, userID, sessionID); {
	case err == nil && live:
		return "", ovrlrd.ErrImported(conv)
	case err == nil:
		// The conversation it made was deleted: the claim goes, unless
		// another import took the session meanwhile.
		stale := s.table.Delete(attrPK, userPK(userID)).Range(attrSK, importedPrefix+sessionID).If("'conversationId' = ?", conv)
		if err := written("release import", stale.Run(ctx), nil); err != nil {
			return "", err
		}
	case !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND):
		return "", err
	}
	convID := uuid.NewString()
	it := importingItem{
		itemKey: itemKey{userPK(userID), importingPrefix + convID}, SessionID: sessionID,
		TTL: s.now().Add(importWindow).Unix(),
	}
	err := s.runTx(ctx, "begin import", func(error) (*dynamo.WriteTx, error) {
		return s.db.WriteTx().Check(s.accountOpen(userID)).Put(s.table.Put(it).If("attribute_not_exists($)", attrPK)), nil
	}, errAccountDeleted)
	return convID, err
}

// ImportMessages writes messages of a pending import, 25 to a request.
// Nothing shows them until FinishImport.
func (s *Store) ImportMessages(ctx context.Context, userID, convID string, msgs []ovrlrd.ImportedMessage) error {
	items := make([]any, 0, len(msgs))
	for _, m := range msgs {
		if len(m.Content) > maxContentBytes {
			// A long paste or tool output at the desk: the app shows its
			// start, and the transcript the CLI resumes keeps all of it.
			m.Content = cutUTF8(m.Content, maxContentBytes-len(cutImported)) + cutImported
		}
		if err := checkMessage(m.Role, m.Content); err != nil {
			return err
		}
		items = append(items, newMsgItem(userID, convID, m.Role, m.Content, m.CreatedAt.UnixMilli()))
	}
	if len(items) == 0 {
		return nil
	}
	_, err := s.table.Batch(attrPK, attrSK).Write().Put(items...).Run(ctx)
	return written("import messages", err, nil)
}

// cutImported ends an imported message too long to keep whole.
const cutImported = "\n\n[The rest of this message was too long to show; Claude still has all of it.]"

// FinishImport makes an imported conversation visible, in one transaction
// with the session's claim (ErrImported if another import claimed it
// meanwhile) and the end of the pending import, on an open account.
func (s *Store) FinishImport(ctx context.Context, f ovrlrd.ImportFinish) (ovrlrd.Conversation, error) {
	if !isID(f.ConversationID) || !isID(f.SessionID) {
		return ovrlrd.Conversation{}, ovrlrd.Errorf(ovrlrd.EINVALID, "An import needs a conversation and a session.")
	}
	conv := newConvItem(f.UserID, f.ConversationID, f.CreatedAt.UnixMilli())
	conv.UpdatedAt = f.UpdatedAt.UnixMilli()
	conv.GSI1SK = convGSISK(conv.UpdatedAt, conv.ID)
	conv.ClaudeSessionID, conv.TurnCount = &f.SessionID, f.Messages
	if f.Title != "" {
		conv.Title = &f.Title
	}
	if f.Workspace != "" {
		conv.Workspace = &f.Workspace
	}
	if p := f.Project; p != nil {
		// Attached with no base: the first turn checks it out.
		conv.ProjectID, conv.Branch, conv.WorkDir = p.ID, ovrlrd.ProjectBranch(f.ConversationID), p.Name
		conv.ImportWorkspace = f.Workspace
	}
	claim := importedItem{itemKey: itemKey{userPK(f.UserID), importedPrefix + f.SessionID}, ConversationID: f.ConversationID}
	// The failed conditions below are in the items' order; the
	// conversation's item found means the import ended already, as its
	// pending item gone does.
	err := s.runTx(ctx, "finish import", func(error) (*dynamo.WriteTx, error) {
		tx := s.db.WriteTx().Check(s.accountOpen(f.UserID)).
			Delete(s.table.Delete(attrPK, userPK(f.UserID)).Range(attrSK, importingPrefix+f.ConversationID).If("attribute_exists($)", attrPK)).
			Put(s.table.Put(claim).If("attribute_not_exists($)", attrPK)).
			Put(s.table.Put(conv).If("attribute_not_exists($)", attrPK))
		if f.Project != nil {
			// A use of the project, as a turn's attaching counts one; and
			// the project still there.
			ppk, psk := projectKey(f.UserID, f.Project.ID)
			tx.Update(s.table.Update(attrPK, ppk).Range(attrSK, psk).If("attribute_exists($)", attrPK).
				Add("accessCount", 1).Set("lastUsed", s.nowMillis()))
		}
		return tx, nil
	}, errAccountDeleted, errImportGone, errSessionClaimed, errImportGone, errProjectNotFound)
	if err == errSessionClaimed {
		// The session was claimed meanwhile: name the conversation that won.
		if other, rerr := s.Imported(ctx, f.UserID, f.SessionID); rerr == nil {
			err = ovrlrd.ErrImported(other)
		}
	}
	if err != nil {
		return ovrlrd.Conversation{}, err
	}
	return conv.conversation(), nil
}

var (
	errImportGone     = ovrlrd.Errorf(ovrlrd.ENOTFOUND, "The import expired. Please try again.")
	errSessionClaimed = ovrlrd.Errorf(ovrlrd.ECONFLICT, "This session was already imported.")
)

// AbortImport removes what a pending import wrote: its messages, then the
// pending item. It is also how an abandoned import is swept.
func (s *Store) AbortImport(ctx context.Context, userID, convID string) error {
	if err := s.purge(ctx, convPrefix+convID, ""); err != nil {
		return err
	}
	return s.deleteKeys(ctx, []itemKey{{userPK(userID), importingPrefix + convID}})
}

// pendingImport reports whether sk is a pending import's, and its
// conversation id.
func pendingImport(sk string) (string, bool) {
	id, ok := strings.CutPrefix(sk, importingPrefix)
	return id, ok && isID(id)
}
