// Package transcript reads a Claude Code session transcript, the CLI's
// JSONL file <CLAUDE_CONFIG_DIR>/projects/<slug>/<sessionId>.jsonl, that a
// user uploads so the session goes on in the cloud with --resume.
//
// A transcript is untrusted twice: its messages reach the app, and the
// file itself is placed for the pinned CLI to read. Parse therefore
// refuses, naming the first bad line, whatever the CLI would not have
// written or would read differently: lines that are not JSON objects,
// entries of another session, a parent chain that does not hold, messages
// whose role and content do not match, and the few entries that change how
// the CLI runs a resumed session. Nothing in a transcript is executed or
// used as a path here; Cwd is only informational.
//
// A transcript Parse accepts is placed as it is: the pinned CLI resumes it
// in another working directory once it sits under that directory's Slug
// (see Path); it ignores the cwd its entries name (cli_test.go measures
// this).
package transcript

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// Limits. Callers bound the whole upload (100 MB) before it reaches Parse;
// MaxBytes is the same bound kept here as a backstop.
const (
	// MaxLineBytes bounds one line, and so the memory one entry takes. The
	// CLI writes a pasted image inline as base64, up to the API's 5 MB per
	// image (6.7 MB of base64): a tighter bound would refuse ordinary
	// sessions with a screenshot.
	MaxLineBytes = 8 << 20
	// MaxBytes bounds the whole transcript.
	MaxBytes = 100 << 20
	// DefaultMaxMessages is the message count Parse takes for a
	// maxMessages of 0 or less (IMPORT_MAX_MESSAGES's default).
	DefaultMaxMessages = 5000
)

// Message is one message of an imported session, with the time it was
// written at the desk.
type Message = ovrlrd.ImportedMessage

// Session is what a transcript holds for the app.
type Session struct {
	ID       string    // the session id, the file's name: every entry names it
	Messages []Message // in file order, never empty
	Title    string    // the user's /rename, else the CLI's own title, else a summary; "" if none
	// Cwd is the working directory the session began in, if an entry
	// names it. It is informational only: never use it as a path.
	Cwd string
}

// Parse reads a transcript of session sessionID and converts its user and
// assistant messages. Its errors are domain errors: EINVALID naming the
// first bad line (or the missing messages), ETOOLARGE for more than
// maxMessages messages or MaxBytes bytes; an error of r is returned
// wrapped, as an internal one.
func Parse(r io.Reader, sessionID string, maxMessages int) (Session, error) {
	if !isUUID(sessionID) {
		return Session{}, ovrlrd.Errorf(ovrlrd.EINVALID, "The session id is not a UUID.")
	}
	if maxMessages <= 0 {
		maxMessages = DefaultMaxMessages
	}
	p := parser{id: sessionID, seen: map[string]bool{}, converted: map[string]bool{}, titles: map[string]string{}}
	br := bufio.NewReaderSize(r, 64<<10)
	var line []byte
	var total int64
	for n := 1; ; n++ {
		var err error
		var tooLong bool
		line, tooLong, err = readLine(br, line[:0])
		if tooLong {
			return Session{}, ovrlrd.Errorf(ovrlrd.EINVALID, "Line %d of the transcript is longer than %d MiB.", n, MaxLineBytes>>20)
		}
		if err != nil && err != io.EOF {
			return Session{}, fmt.Errorf("transcript: reading: %w", err)
		}
		if total += int64(len(line)); total > MaxBytes {
			return Session{}, ovrlrd.Errorf(ovrlrd.ETOOLARGE, "The transcript is larger than %d MB.", MaxBytes>>20)
		}
		if len(bytes.TrimSpace(line)) > 0 { // the CLI skips blank lines
			if why := p.line(bytes.TrimSuffix(line, []byte("\n"))); why != "" {
				return Session{}, ovrlrd.Errorf(ovrlrd.EINVALID, "Line %d of the transcript %s.", n, why)
			}
			if len(p.messages) > maxMessages {
				return Session{}, ovrlrd.Errorf(ovrlrd.ETOOLARGE, "The transcript holds more than %d messages.", maxMessages)
			}
		}
		if err == io.EOF {
			break
		}
	}
	if len(p.messages) == 0 {
		return Session{}, ovrlrd.Errorf(ovrlrd.EINVALID, "The transcript holds no messages.")
	}
	return Session{ID: sessionID, Messages: p.messages, Title: p.title(), Cwd: p.cwd}, nil
}

// readLine appends the next line of br, with its newline if it has one, to
// buf. A line longer than MaxLineBytes (its newline aside) is not read to
// its end: tooLong says so.
func readLine(br *bufio.Reader, buf []byte) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(bytes.TrimSuffix(buf, []byte("\n"))) > MaxLineBytes {
			return nil, true, nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return buf, false, err
		}
	}
}

// maxTitle is the longest title kept, in characters, as for the titles the
// service makes itself.
const maxTitle = 60

// title is the session's title: the user's own (custom-title) wins over
// the CLI's (ai-title), which wins over the summary of a leaf of this file,
// as in the CLI's session list. The last of each kind counts.
func (p *parser) title() string {
	t := p.titles["custom-title"]
	if t == "" {
		t = p.titles["ai-title"]
	}
	for i := len(p.summaries) - 1; t == "" && i >= 0; i-- {
		if p.seen[p.summaries[i].leaf] {
			t = p.summaries[i].text
		}
	}
	t = strings.Join(strings.Fields(t), " ")
	if utf8.RuneCountInString(t) > maxTitle {
		t = string([]rune(t)[:maxTitle-3]) + "..."
	}
	return t
}

// parser follows a transcript line by line.
type parser struct {
	id        string
	seen      map[string]bool // uuids of the entries so far that a parentUuid may name
	converted map[string]bool // uuids already made messages (files may repeat an entry)
	messages  []Message
	cwd       string
	titles    map[string]string // entry type → the last title of that type
	summaries []summary
}

type summary struct{ leaf, text string }

// parseTime reads an entry's timestamp as the CLI writes it (JavaScript's
// toISOString: RFC 3339 in UTC).
func parseTime(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	return t.UTC(), err == nil
}
