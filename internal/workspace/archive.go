package workspace

import (
	"archive/tar"
	"cmp"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// links says what pack and unpack do with symbolic links.
type links int

const (
	// noLinks is for the folders only the server writes (a conversation's
	// git directory, a project's cache), which never hold a link: pack
	// leaves one out, and unpack refuses an archive that holds one.
	noLinks links = iota
	// keepLinks is for a conversation's own folders, whose working folder
	// may be a checkout of the user's project, where git keeps links: a
	// link dropped there would be committed as deleted by the next push.
	// pack keeps a link as a link, with its target as it is, and unpack
	// makes it again. The target may name anything, inside the folder or
	// not, existing or not: that is safe because nothing on the server
	// follows a link in these folders. The server reads and writes them
	// through an os.Root, which never resolves a link to outside its
	// folder, opening files with O_NOFOLLOW; pack reads a link's target,
	// never what it names. Only the turn's tools, confined to what the
	// turn's user may reach, follow them.
	keepLinks
)

// pack writes dir as a gzipped tar to w: regular files and folders, and
// links when ls is keepLinks, with paths relative to dir, of at most limit
// bytes in all (ErrTooLarge); a link counts as the length of its target.
// Everything is opened through an os.Root and each file is described from
// its open descriptor, so a link swapped in while the folder is walked (by a
// tool still running, or planted for the next save) never brings a file from
// outside the folder into the archive.
func pack(w io.Writer, dir string, limit int64, ls links) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	err = fs.WalkDir(root.FS(), ".", func(rel string, d fs.DirEntry, err error) error {
		if err != nil || rel == "." {
			return err
		}
		switch {
		case d.IsDir():
			info, err := d.Info()
			if err != nil {
				return err
			}
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: rel + "/", Mode: 0o700, ModTime: info.ModTime()})
		case d.Type().IsRegular():
			return packFile(tw, root, rel, &limit)
		case d.Type() == fs.ModeSymlink && ls == keepLinks:
			return packLink(tw, root, rel, &limit)
		}
		return nil // sockets, FIFOs, devices: not part of a workspace worth keeping
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

// packFile adds one regular file, as it is once opened, and takes its size
// from left. One that cannot be opened as a regular file of the folder any
// more (it became a link, went away, or was locked by a tool) is left out:
// only the turn's own tools can do that, to their own conversation.
func packFile(tw *tar.Writer, root *os.Root, rel string, left *int64) error {
	f, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return nil
	}
	if *left -= info.Size(); *left < 0 {
		return ErrTooLarge
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rel, Mode: int64(info.Mode().Perm()), Size: info.Size(), ModTime: info.ModTime()}); err != nil {
		return err
	}
	_, err = io.CopyN(tw, f, info.Size())
	return err
}

// packLink adds one link, its target as it is (read, never followed), and
// takes the target's length from left. One that is no longer a link when
// read (swapped for a file or gone) is left out, as packFile leaves out a
// file that changed.
func packLink(tw *tar.Writer, root *os.Root, rel string, left *int64) error {
	target, err := root.Readlink(rel)
	if err != nil {
		return nil
	}
	if *left -= int64(len(target)); *left < 0 {
		return ErrTooLarge
	}
	return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: rel, Linkname: target, Mode: 0o777})
}

// unpack extracts a gzipped tar into dir. Every entry must stay inside dir;
// links are refused unless ls is keepLinks, and hard links and devices
// always are; the total size (a link's being the length of its target) is
// capped, so a hostile or corrupt archive can neither escape nor fill the
// disk. An entry is made through an os.Root, so a link made by an earlier
// entry leads a later one nowhere outside dir, and a file is never written
// through a link.
func unpack(r io.Reader, dir string, limit int64, ls links) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("workspace: not a gzip archive: %w", err)
	}
	tr := tar.NewReader(gz)
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("workspace: archive: %w", err)
		}
		name := filepath.FromSlash(strings.TrimSuffix(h.Name, "/"))
		if !filepath.IsLocal(name) {
			return fmt.Errorf("workspace: archive entry %q leaves its folder", h.Name)
		}
		switch {
		case h.Typeflag == tar.TypeDir:
			if err := root.MkdirAll(name, 0o700); err != nil {
				return err
			}
		case h.Typeflag == tar.TypeReg:
			total += h.Size
			if total > limit {
				return ErrTooLarge
			}
			if err := root.MkdirAll(filepath.Dir(name), 0o700); err != nil {
				return err
			}
			f, err := root.OpenFile(name, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|syscall.O_NOFOLLOW, fs.FileMode(h.Mode).Perm()|0o600)
			if err != nil {
				return err
			}
			_, err = io.CopyN(f, tr, h.Size)
			if err := cmp.Or(err, f.Close()); err != nil {
				return err
			}
		case h.Typeflag == tar.TypeSymlink && ls == keepLinks:
			total += int64(len(h.Linkname))
			if total > limit {
				return ErrTooLarge
			}
			if err := root.MkdirAll(filepath.Dir(name), 0o700); err != nil {
				return err
			}
			// Only where the link is made is confined; its target is
			// kept as it is (see keepLinks).
			if err := root.Symlink(h.Linkname, name); err != nil {
				return err
			}
		case ls == keepLinks:
			return fmt.Errorf("workspace: archive entry %q is not a file, a folder or a link", h.Name)
		default:
			return fmt.Errorf("workspace: archive entry %q is not a file or a folder", h.Name)
		}
	}
}
