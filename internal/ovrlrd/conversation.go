package ovrlrd

// Role is who wrote a message. The app rejects any other value.
type Role string

const (
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
	RoleSystem    Role = "system"
)

// Valid reports whether r is one of the three roles the app knows.
func (r Role) Valid() bool {
	return r == RoleUser || r == RoleAssistant || r == RoleSystem
}

// Conversation is a chat thread owned by one user.
type Conversation struct {
	ID              string    `json:"id"`
	UserID          string    `json:"userId"`
	ClaudeSessionID *string   `json:"claudeSessionId"`
	Title           *string   `json:"title"`
	CreatedAt       Timestamp `json:"createdAt"`
	UpdatedAt       Timestamp `json:"updatedAt"`
	// Totals of the conversation's turns; extra keys the app ignores.
	TurnCount    int     `json:"turnCount"`
	CostUSD      float64 `json:"costUsd"`
	InputTokens  int64   `json:"inputTokens"`
	OutputTokens int64   `json:"outputTokens"`
	// The project the conversation works on, fixed at its first turn, the
	// branch it works on there, and the project's name then (the directory
	// picker's workDir). Empty without a project.
	ProjectID string `json:"projectId,omitempty"`
	Branch    string `json:"branch,omitempty"`
	WorkDir   string `json:"workDir,omitempty"`
	Base      string `json:"-"` // the project's commit the branch starts from
	// Workspace is the version of the conversation's saved folders that
	// goes with ClaudeSessionID; the app never sees it.
	Workspace string `json:"-"`
	// Checkout marks an imported conversation on a project whose folders
	// are still the import's (a session, an empty working folder): its
	// next turn checks the project out first.
	Checkout bool `json:"-"`
	// LastTurn is the id of the conversation's latest turn: a client that
	// reattaches without an event id replays it.
	LastTurn string `json:"-"`
}

// The project is fixed for a conversation's life: --resume is tied to the
// working folder.
var (
	ErrOtherProject = Errorf(ECONFLICT, "This conversation works on another project.")
	ErrNoProject    = Errorf(ECONFLICT, "This conversation was started without a project; start a new one to work on a project.")
)

// Accepts reports whether a turn naming projectID ("" names none) may run
// on c: the conversation's own project, or any for one with nothing kept
// yet (a first turn that failed before its checkout was ready).
func (c Conversation) Accepts(projectID string) error {
	kept := c.Base != "" || c.Workspace != "" || c.ClaudeSessionID != nil
	switch {
	case projectID == "" || projectID == c.ProjectID || !kept:
		return nil
	case c.ProjectID != "":
		return ErrOtherProject
	}
	return ErrNoProject
}

// Message is one entry of a conversation.
type Message struct {
	ID             string    `json:"id"`
	ConversationID string    `json:"conversationId"`
	Role           Role      `json:"role"`
	Content        string    `json:"content"`
	CreatedAt      Timestamp `json:"createdAt"`
}

// NewMessage is what a caller supplies to add a message; the store assigns
// its id and time.
type NewMessage struct {
	Role    Role
	Content string
}

// Usage is what turns cost.
type Usage struct {
	CostUSD      float64
	InputTokens  int64
	OutputTokens int64
}
