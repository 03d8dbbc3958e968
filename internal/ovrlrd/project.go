package ovrlrd

import (
	"strings"
	"unicode/utf8"
)

// Limits of a user's projects.
const (
	MaxProjectName = 100 // characters
	MaxProjects    = 20  // per user
)

// Project is one of a user's git repositories. At most one of a user's
// projects is the default.
type Project struct {
	ID      string `json:"id"`
	UserID  string `json:"-"`
	Name    string `json:"name"`
	RepoURL string `json:"repoUrl"`
	Branch  string `json:"branch"`
	// Token is the repository's access token, sealed: the store keeps the
	// blob as given and never sees the plaintext, and JSON never shows it.
	Token     []byte    `json:"-"`
	Default   bool      `json:"default"`
	CreatedAt Timestamp `json:"createdAt"`
	UpdatedAt Timestamp `json:"updatedAt"`
}

// ValidProjectName reports whether name is valid UTF-8 of 1 to
// MaxProjectName characters, not all of them blank.
func ValidProjectName(name string) bool {
	return utf8.ValidString(name) && strings.TrimSpace(name) != "" && utf8.RuneCountInString(name) <= MaxProjectName
}
