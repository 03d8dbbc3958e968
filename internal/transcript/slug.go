package transcript

import (
	"path/filepath"
	"strconv"
	"unicode/utf16"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// maxSlug is the longest slug the CLI uses as it is; a longer one is cut
// there and a hash of the whole path is appended, so that folder names stay
// below file systems' limits (255 bytes).
const maxSlug = 200

// Slug is the name of the folder under $CLAUDE_CONFIG_DIR/projects where the
// CLI keeps the transcripts of sessions run in workDir; --resume looks for
// a session only there. It is the pinned CLI's own rule: every UTF-16 code
// unit of workDir other than A-Z, a-z and 0-9 becomes '-' (so a character
// outside the BMP gives two), and a slug longer than 200 units is cut to
// 200 and followed by '-' and a base-36 hash of workDir.
func Slug(workDir string) string {
	units := utf16.Encode([]rune(workDir))
	b := make([]byte, 0, min(len(units), maxSlug)+8)
	for _, u := range units[:min(len(units), maxSlug)] {
		if !('A' <= u && u <= 'Z' || 'a' <= u && u <= 'z' || '0' <= u && u <= '9') {
			u = '-'
		}
		b = append(b, byte(u))
	}
	if len(units) > maxSlug {
		b = append(b, '-')
		b = strconv.AppendInt(b, pathHash(units), 36)
	}
	return string(b)
}

// pathHash is the CLI's hash of a long path: Java's String.hashCode over
// the UTF-16 code units, made positive as JavaScript's Math.abs does (which
// leaves -2^31 at 2^31, out of int32's range).
func pathHash(units []uint16) int64 {
	var h int32
	for _, u := range units {
		h = h*31 + int32(u)
	}
	return max(int64(h), -int64(h))
}

// Path is where the CLI looks for session sessionID when it runs in workDir
// with CLAUDE_CONFIG_DIR set to configDir: the place for an imported
// transcript, as it was uploaded. workDir is the directory as the CLI sees
// it, with no link in it (the CLI slugs its getcwd). A sessionID that is
// not a UUID is refused, since it is a file name here.
func Path(configDir, workDir, sessionID string) (string, error) {
	if !isUUID(sessionID) {
		return "", ovrlrd.Errorf(ovrlrd.EINVALID, "The session id is not a UUID.")
	}
	return filepath.Join(configDir, "projects", Slug(workDir), sessionID+".jsonl"), nil
}
