package ovrlrd

import "time"

// TimeFormat is the one timestamp format the app parses without locale
// trouble: UTC, exactly three fractional digits, and Z (never +00:00, whose
// '+' breaks query strings).
const TimeFormat = "2006-01-02T15:04:05.000Z"

// Timestamp is a time that marshals to JSON in TimeFormat.
type Timestamp time.Time

func (t Timestamp) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format(TimeFormat) + `"`), nil
}

// Time returns t as a time.Time.
func (t Timestamp) Time() time.Time { return time.Time(t) }

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

// User is an account, created at the first sign-in with Apple.
type User struct {
	ID        string
	AppleSub  string
	Email     string // as Apple sent it; may be empty
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Conversation is a chat thread owned by one user.
type Conversation struct {
	ID              string    `json:"id"`
	UserID          string    `json:"userId"`
	ClaudeSessionID *string   `json:"claudeSessionId"`
	Title           *string   `json:"title"`
	CreatedAt       Timestamp `json:"createdAt"`
	UpdatedAt       Timestamp `json:"updatedAt"`
}

// Message is one entry of a conversation.
type Message struct {
	ID             string    `json:"id"`
	ConversationID string    `json:"conversationId"`
	Role           Role      `json:"role"`
	Content        string    `json:"content"`
	CreatedAt      Timestamp `json:"createdAt"`
}

// Environment is an APNs environment.
type Environment string

const (
	EnvSandbox    Environment = "sandbox"
	EnvProduction Environment = "production"
)

// Valid reports whether e is a known APNs environment.
func (e Environment) Valid() bool { return e == EnvSandbox || e == EnvProduction }

// Device is a phone registered for push notifications.
type Device struct {
	UserID      string
	Token       string // lowercase hex, as the app sends it
	Environment Environment
	UpdatedAt   time.Time
}

// LoginSession is the server-side state behind a session token. A token is
// accepted only while its session is live and its generation is current.
type LoginSession struct {
	ID         string
	UserID     string
	Generation int
	// PreviousGeneration and RotatedAt let a client that lost the response to
	// a refresh retry it for a short while without tripping reuse detection.
	PreviousGeneration int
	RotatedAt          time.Time
	Revoked            bool
	CreatedAt          time.Time
	ExpiresAt          time.Time
}

// Run is the lease that makes one turn per conversation the rule across all
// instances. A lease whose holder died expires at ExpiresAt.
type Run struct {
	ConversationID string
	Holder         string
	Cancel         bool
	StartedAt      time.Time
	ExpiresAt      time.Time
}

// AuditEvent is a security-relevant event kept for a retention period.
type AuditEvent struct {
	Action    string
	UserID    string // empty when not known
	IPHash    string // never the raw address
	UserAgent string
	Reason    string
	Time      time.Time
}

// Page is a request for one page of a list.
type Page struct {
	Limit  int
	Cursor string // opaque; empty for the first page
}

// RateDecision is the outcome of counting one request against a limit.
type RateDecision struct {
	Allowed   bool
	Limit     int
	Remaining int
	Reset     time.Time
}
