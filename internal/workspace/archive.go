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

// pack writes dir as a gzipped tar to w: regular files and folders only,
// with paths relative to dir, of at most limit bytes in all (ErrTooLarge).
// Everything is opened through an os.Root and each file is described from
// its open descriptor, so a link swapped in while the folder is walked (by a
// tool still running, or planted for the next save) never brings a file from
// outside the folder into the archive.
func pack(w io.Writer, dir string, limit int64) error {
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
		}
		return nil // sockets, symlinks: not part of a workspace worth keeping
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

// unpack extracts a gzipped tar into dir. Every entry must stay inside dir;
// links and devices are refused; the total size is capped, so a hostile or
// corrupt archive can neither escape nor fill the disk.
func unpack(r io.Reader, dir string, limit int64) error {
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
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			total += h.Size
			if total > limit {
				return ErrTooLarge
			}
			if err := root.MkdirAll(filepath.Dir(name), 0o700); err != nil {
				return err
			}
			f, err := root.OpenFile(name, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, fs.FileMode(h.Mode).Perm()|0o600)
			if err != nil {
				return err
			}
			_, err = io.CopyN(f, tr, h.Size)
			if err := cmp.Or(err, f.Close()); err != nil {
				return err
			}
		default:
			return fmt.Errorf("workspace: archive entry %q is not a file or a folder", h.Name)
		}
	}
}
