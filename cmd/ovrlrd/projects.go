package main

// The CLI keeps each session as <claude dir>/projects/<slug>/<sessionId>.jsonl,
// the slug naming the folder it ran in. Everything here is read through an
// os.Root on the projects folder, so no path leaves it, and no link is
// followed at all: a slug folder or transcript that is a link (to a file
// outside, or to another inside) is refused, checked with Lstat before it
// is opened and compared with what was opened after.

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/transcript"
)

// maxTranscript is the largest transcript read: the server takes none
// larger.
const maxTranscript = ovrlrd.MaxUploadTranscript

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

// openSessions opens the projects folder of the Claude folder the flag
// names, or the default one (claudeDir).
func openSessions(flag string, sys system) (*projects, error) {
	dir, err := claudeDir(flag, sys)
	if err != nil {
		return nil, err
	}
	return openProjects(dir)
}

func openProjects(claude string) (*projects, error) {
	path := filepath.Join(claude, "projects")
	// Looked at before it is opened: opening a FIFO would wait for a
	// writer forever. The folder itself may be a link (dotfiles kept
	// elsewhere), as Claude Code follows it; nothing inside may.
	fi, err := os.Lstat(path)
	if err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		fi, err = os.Stat(path)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no Claude Code sessions on this machine: %s does not exist (--claude-dir names another folder)", path)
	}
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a folder", path)
	}
	root, err := os.OpenRoot(path)
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

// slugs lists the plain folders directly inside, and the other entries
// that are not plain files: links, and on Windows junctions (which
// read as irregular), none of which is followed.
func (p *projects) slugs() (dirs []string, others []notFollowed, err error) {
	entries, err := readDir(p.root)
	if err != nil {
		return nil, nil, fmt.Errorf("listing %s: %w", p.path, err)
	}
	for _, e := range entries {
		switch t := e.Type(); {
		case t == fs.ModeDir:
			dirs = append(dirs, e.Name())
		case t&fs.ModeSymlink != 0:
			others = append(others, notFollowed{e.Name(), "it is a symbolic link, not followed"})
		case t != 0:
			others = append(others, notFollowed{e.Name(), "it is not a plain folder, not followed"})
		}
	}
	return dirs, others, nil
}

// notFollowed is an entry of the projects folder that is not looked into.
type notFollowed struct{ name, why string }

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
	f, err := dir.OpenFile(name, os.O_RDONLY|openFlags, 0)
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
// was checked, up to its last whole line: the CLI ends each with a
// newline, and one without is still being written.
func readAll(f *os.File, name string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(f, maxTranscript+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if len(data) > maxTranscript {
		return nil, tooLarge(name, int64(len(data)))
	}
	return data[:bytes.LastIndexByte(data, '\n')+1], nil
}

// find reads the transcript of session id, from whichever slug folder
// holds it (the most recently written, should two). A link where it would
// be is refused. Slug folders that are links, or cannot be opened, are
// passed over; the error names them when the session is not found.
func (p *projects) find(ctx context.Context, id string) (data []byte, path string, err error) {
	if !transcript.IsSessionID(id) {
		return nil, "", fmt.Errorf("%q is not a session id: Claude Code names sessions with a UUID (see ovrlrd sessions)", id)
	}
	dirs, others, err := p.slugs()
	if err != nil {
		return nil, "", err
	}
	return p.search(ctx, id, dirs, others)
}

// search looks for session id in the slug folders dirs, newest copy
// first; one that cannot be opened is passed over, and named only when
// the session is not found.
func (p *projects) search(ctx context.Context, id string, dirs []string, others []notFollowed) (data []byte, path string, err error) {
	name := id + ".jsonl"
	var found *os.File
	var foundTime time.Time
	defer func() {
		if found != nil {
			found.Close()
		}
	}()
	var skipped []string
	for _, slug := range dirs {
		if err := ctx.Err(); err != nil {
			return nil, "", err
		}
		dir, err := p.openSlug(slug)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("%s (%v)", slug, err))
			continue
		}
		f, fi, err := p.openTranscript(dir, slug, name)
		dir.Close()
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
		var links []string
		for _, o := range others {
			links = append(links, o.name)
		}
		if len(links) > 0 {
			msg += fmt.Sprintf(" (links are not followed: %s)", strings.Join(links, ", "))
		}
		if len(skipped) > 0 {
			msg += fmt.Sprintf(" (not searched: %s)", strings.Join(skipped, "; "))
		}
		return nil, "", errors.New(msg)
	}
	data, err = readAll(found, path)
	return data, path, err
}
