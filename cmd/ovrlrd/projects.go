package main

// The CLI keeps each session as <claude dir>/projects/<slug>/<sessionId>.jsonl,
// the slug naming the folder it ran in. Everything here is read through an
// os.Root on the projects folder, so no path leaves it, and no link is
// followed at all: a slug folder or transcript that is a link (to a file
// outside, or to another inside) is refused, checked with Lstat before it
// is opened and compared with what was opened after.

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// maxTranscript is the largest transcript read: the server takes none
// larger.
const maxTranscript = 100_000_000

// uuidPattern is how the CLI names sessions (crypto.randomUUID). A session
// id is checked against it before it becomes part of a file name, so that
// "../x" never reaches the disk.
var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// errLink is a link refused; links are not followed, wherever they point.
var errLink = errors.New("links are not followed")

// refusal is why an entry is not read: an import names the entry, a list
// shows why on the entry's own row.
type refusal struct {
	path, why string
	err       error // errLink, or nil
}

func (r *refusal) Error() string { return r.path + " " + r.why }
func (r *refusal) Unwrap() error { return r.err }

func refuseLink(path string) error {
	return &refusal{path: path, why: "is a symbolic link, and ovrlrd reads nothing through a link", err: errLink}
}

// claudeDir is Claude Code's folder: --claude-dir, else CLAUDE_CONFIG_DIR
// (where the CLI itself then keeps its sessions), else ~/.claude.
func claudeDir(flag string, sys system) (string, error) {
	if dir := cmp.Or(flag, sys.getenv("CLAUDE_CONFIG_DIR")); dir != "" {
		return dir, nil
	}
	home, err := sys.homeDir()
	if err != nil {
		return "", fmt.Errorf("finding the home folder: %w", err)
	}
	return filepath.Join(home, ".claude"), nil
}

// projects is the CLI's projects folder, opened as a root.
type projects struct {
	root *os.Root
	path string
}

func openProjects(claude string) (*projects, error) {
	path := filepath.Join(claude, "projects")
	root, err := os.OpenRoot(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no Claude Code sessions on this machine: %s does not exist (--claude-dir names another folder)", path)
	}
	if err != nil {
		return nil, err
	}
	return &projects{root: root, path: path}, nil
}

func (p *projects) Close() error { return p.root.Close() }

// name is an entry's path for messages.
func (p *projects) name(parts ...string) string {
	return filepath.Join(append([]string{p.path}, parts...)...)
}

// slugs lists the folders directly inside, and the links among its
// entries, which are not followed.
func (p *projects) slugs() (dirs, links []string, err error) {
	entries, err := readDir(p.root)
	if err != nil {
		return nil, nil, fmt.Errorf("listing %s: %w", p.path, err)
	}
	for _, e := range entries {
		switch {
		case e.Type()&fs.ModeSymlink != 0:
			links = append(links, e.Name())
		case e.IsDir():
			dirs = append(dirs, e.Name())
		}
	}
	return dirs, links, nil
}

func readDir(r *os.Root) ([]fs.DirEntry, error) {
	f, err := r.Open(".")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return entries, err
}

// openSlug opens slug folder name as a root of its own: a folder, not a
// link, and the very one looked at.
func (p *projects) openSlug(name string) (*os.Root, error) {
	fi, err := p.root.Lstat(name)
	if err != nil {
		return nil, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil, refuseLink(p.name(name))
	}
	if !fi.IsDir() || fi.Mode().Type() != fs.ModeDir {
		return nil, &refusal{path: p.name(name), why: "is not a folder"}
	}
	sub, err := p.root.OpenRoot(name)
	if err != nil {
		return nil, err
	}
	if got, err := sub.Stat("."); err != nil || !os.SameFile(fi, got) {
		sub.Close()
		return nil, &refusal{path: p.name(name), why: "changed while it was opened"}
	}
	return sub, nil
}

// openTranscript opens file name of slug folder dir: a regular file, not a
// link, no larger than maxTranscript, and the very one looked at (a link
// swapped in between is refused too).
func (p *projects) openTranscript(dir *os.Root, slug, name string) (*os.File, fs.FileInfo, error) {
	fi, err := dir.Lstat(name)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return nil, nil, refuseLink(p.name(slug, name))
	case !fi.Mode().IsRegular():
		return nil, nil, &refusal{path: p.name(slug, name), why: "is not a regular file"}
	case fi.Size() > maxTranscript:
		return nil, nil, tooLarge(p.name(slug, name), fi.Size())
	}
	f, err := dir.Open(name)
	if err != nil {
		return nil, nil, err
	}
	if got, err := f.Stat(); err != nil || !os.SameFile(fi, got) {
		f.Close()
		return nil, nil, &refusal{path: p.name(slug, name), why: "changed while it was opened"}
	}
	return f, fi, nil
}

func tooLarge(name string, size int64) error {
	return &refusal{path: name, why: fmt.Sprintf("is %.1f MB, more than the %d MB a session may have", float64(size)/1e6, maxTranscript/1_000_000)}
}

// readAll reads an opened transcript, which may have grown since its size
// was checked.
func readAll(f *os.File, name string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(f, maxTranscript+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if len(data) > maxTranscript {
		return nil, tooLarge(name, int64(len(data)))
	}
	return data, nil
}

// find reads the transcript of session id, from whichever slug folder
// holds it (the most recently written, should two). A link where it would
// be is refused; linked slug folders are not looked into, and the error
// says so when the session is not found.
func (p *projects) find(id string) (data []byte, path string, err error) {
	if !uuidPattern.MatchString(id) {
		return nil, "", fmt.Errorf("%q is not a session id: Claude Code names sessions with a UUID (see ovrlrd sessions)", id)
	}
	dirs, links, err := p.slugs()
	if err != nil {
		return nil, "", err
	}
	name := id + ".jsonl"
	var found *os.File
	var foundTime time.Time
	defer func() {
		if found != nil {
			found.Close()
		}
	}()
	for _, slug := range dirs {
		f, fi, err := p.openIn(slug, name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		if found == nil || fi.ModTime().After(foundTime) {
			if found != nil {
				found.Close()
			}
			found, foundTime, path = f, fi.ModTime(), p.name(slug, name)
		} else {
			f.Close()
		}
	}
	if found == nil {
		msg := fmt.Sprintf("session %s not found in %s", id, p.path)
		if len(links) > 0 {
			msg += fmt.Sprintf(" (links are not followed: %s)", strings.Join(links, ", "))
		}
		return nil, "", errors.New(msg)
	}
	data, err = readAll(found, path)
	return data, path, err
}

// openIn opens file name of slug folder slug.
func (p *projects) openIn(slug, name string) (*os.File, fs.FileInfo, error) {
	dir, err := p.openSlug(slug)
	if err != nil {
		return nil, nil, err
	}
	defer dir.Close()
	return p.openTranscript(dir, slug, name)
}
