package ovrlrd

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of a user's projects.
const (
	MaxProjectName = 100 // characters
	MaxProjects    = 20  // per user
)

// Project is one of a user's git repositories. At most one of a user's
// projects is the default. The directory picker's proposal shows projects
// as directories: the name is the directory's path, with a label and how
// recently conversations started on it.
type Project struct {
	ID      string `json:"id"`
	UserID  string `json:"-"`
	Name    string `json:"name"`
	RepoURL string `json:"repoUrl"`
	Branch  string `json:"branch"`
	// Token is the repository's access token, sealed: the store keeps the
	// blob as given and never sees the plaintext, and JSON never shows it.
	Token       []byte     `json:"-"`
	HasToken    bool       `json:"hasToken"`
	Default     bool       `json:"default"`
	Label       *string    `json:"label"`
	AccessCount int        `json:"accessCount"`
	LastUsed    *Timestamp `json:"lastUsed"`
	CreatedAt   Timestamp  `json:"createdAt"`
	UpdatedAt   Timestamp  `json:"updatedAt"`
}

// NewProject is what a user asks to add: the token in plain text, checked
// against the repository and sealed before it is kept.
type NewProject struct {
	Name, RepoURL, Branch, Token string
	Default                      bool
}

// ProjectChange is what a user asks to change; nil keeps a field. A token
// of "" removes it (a public repository); another is checked first.
type ProjectChange struct {
	Name, Label, Token *string
	Default            *bool
}

// ProjectUpdate is what the store changes; nil keeps a field as it is.
type ProjectUpdate struct {
	Name    *string
	Label   *string // "" removes the label
	Default *bool   // true makes it the only default; false clears it if it was
	Token   []byte  // sealed; nil keeps it, empty removes it
}

// ValidProjectName reports whether name is valid UTF-8 of 1 to
// MaxProjectName characters, not all of them blank, without a slash or a
// control character: the name is also a path segment of the directory
// routes. Neither may it be a segment a path treats as special: "." and
// "..", and "stream", which CloudFront routes to the stream function in
// /chat/directories/stream.
func ValidProjectName(name string) bool {
	return utf8.ValidString(name) && strings.TrimSpace(name) != "" && utf8.RuneCountInString(name) <= MaxProjectName &&
		!strings.ContainsFunc(name, func(r rune) bool { return r == '/' || unicode.IsControl(r) }) &&
		name != "." && name != ".." && name != "stream"
}

// ValidLabel reports whether label is a directory's display label: valid
// UTF-8 of at most MaxProjectName characters, without control characters
// ("" removes it).
func ValidLabel(label string) bool {
	return utf8.ValidString(label) && utf8.RuneCountInString(label) <= MaxProjectName && !strings.ContainsFunc(label, unicode.IsControl)
}

// ProjectBranch is the branch a conversation works on: its own, under a
// prefix pushes are confined to.
func ProjectBranch(conversationID string) string {
	// 12 hex digits: conversations of many users can share a repository,
	// and a name taken on the host would refuse every push of the other.
	short := strings.ReplaceAll(conversationID, "-", "")
	return BranchPrefix + short[:min(len(short), 12)]
}

// BranchPrefix is the prefix of every branch the server pushes.
const BranchPrefix = "ovrlrd/"

// Changes are the files a conversation changed on its branch against the
// project it started from (Files never nil), with a unified diff cut at a
// bound.
type Changes struct {
	Branch    string       `json:"branch"`
	Base      string       `json:"base"`
	Files     []FileChange `json:"files"`
	Diff      string       `json:"diff"`
	Truncated bool         `json:"truncated"`
}

// FileChange is one changed file: "added", "modified" or "deleted".
type FileChange struct {
	Path   string `json:"path"`
	Status string `json:"status"`
}

// Pushed is what a push sent.
type Pushed struct {
	Branch string `json:"branch"`
	Commit string `json:"commit"`
}
