package ovrlrd

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ImportedMessage is one message of an imported session, with the time it
// was written at the desk.
type ImportedMessage struct {
	Role      Role
	Content   string
	CreatedAt time.Time
}

// ImportFinish is what makes an imported conversation visible: every message
// is written by then.
type ImportFinish struct {
	UserID         string
	ConversationID string
	SessionID      string // the CLI session, resumed by the next turn
	Title          string // "" for none
	Workspace      string // the version of the saved folders holding the transcript
	// Project, if set, is attached to the conversation with no checkout
	// yet: its first turn makes one.
	Project   *Project
	Messages  int
	CreatedAt time.Time // the first message's time
	UpdatedAt time.Time // the last message's
}

// ErrImported answers a second import of a session; the message names the
// conversation the first one made.
func ErrImported(conversationID string) error {
	return Errorf(ECONFLICT, "This session was already imported as conversation %s.", conversationID)
}

// MaxImportTitle is the longest title an import may give, in characters.
const MaxImportTitle = 200

// ImportTitle is the title an import gives, as kept: on one line, its runs
// of white space one space. ok is false for one longer than MaxImportTitle
// or holding a control character. The server and the desk command share
// the rule, so the command refuses before it uploads anything.
func ImportTitle(t string) (kept string, ok bool) {
	kept = strings.Join(strings.Fields(t), " ")
	return kept, utf8.RuneCountInString(kept) <= MaxImportTitle && !strings.ContainsFunc(kept, unicode.IsControl)
}

// Imported is what an import made.
type Imported struct {
	ConversationID string  `json:"conversationId"`
	MessageCount   int     `json:"messageCount"`
	Title          *string `json:"title"`
}

// ImportRequest asks for a session to be imported: its transcript sent
// inline, or uploaded first (UploadID).
type ImportRequest struct {
	UserID     string
	SessionID  string // the CLI's id of the session, a UUID
	Transcript []byte // the JSONL file, when sent inline
	UploadID   string // else the upload holding it
	ProjectID  string // "" for none: the conversation's project
	Title      string // "" keeps the transcript's own
}
