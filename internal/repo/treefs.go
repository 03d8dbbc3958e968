package repo

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-git/v5"
)

// treeFS is the working tree as the server reads and writes it. The tools
// that edit it are hostile and may still be running while the server reads
// it, so:
//   - every access goes through an os.Root, which resolves each path
//     component against an open directory: no symlink, even one swapped in
//     mid-call, leads outside workDir. go-git itself reads a symlink as a
//     link, committing its target as text;
//   - a .git at any depth does not exist: the server's repository is
//     elsewhere, and one planted here is neither read nor committed;
//   - only directories, regular files and symlinks exist: opening a FIFO
//     would block forever, and a device is nothing to commit.
type treeFS struct{ root *os.Root }

func newTreeFS(dir string) (*treeFS, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &treeFS{root}, nil
}

func (t *treeFS) Close() error { return t.root.Close() }

// rel turns a billy path into a name under the root.
func rel(op, name string) (string, error) {
	clean := strings.TrimPrefix(path.Clean("/"+filepath.ToSlash(name)), "/")
	if clean == "" {
		return ".", nil
	}
	for part := range strings.SplitSeq(clean, "/") {
		if isDotGit(part) {
			return "", notExist(op, name)
		}
	}
	return clean, nil
}

// isDotGit folds case, as a case-insensitive file system would.
func isDotGit(name string) bool { return strings.EqualFold(name, git.GitDirName) }

func kept(m fs.FileMode) bool {
	t := m.Type()
	return t == 0 || t == fs.ModeDir || t == fs.ModeSymlink
}

func notExist(op, name string) error {
	return &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
}

func (t *treeFS) open(op, name string, flag int, perm fs.FileMode) (*os.File, error) {
	n, err := rel(op, name)
	if err != nil {
		return nil, err
	}
	if flag&os.O_CREATE != 0 {
		if err := t.root.MkdirAll(path.Dir(n), 0o755); err != nil {
			return nil, err
		}
	}
	// O_NONBLOCK: a FIFO swapped in after the listing must not block here.
	// It changes nothing for files and directories.
	f, err := t.root.OpenFile(n, flag|syscall.O_NONBLOCK, perm)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !kept(fi.Mode()) {
		err = notExist(op, name)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (t *treeFS) OpenFile(name string, flag int, perm fs.FileMode) (billy.File, error) {
	f, err := t.open("open", name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &treeFile{File: f, name: name}, nil
}

func (t *treeFS) Create(name string) (billy.File, error) {
	return t.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

func (t *treeFS) Open(name string) (billy.File, error) { return t.OpenFile(name, os.O_RDONLY, 0) }

func (t *treeFS) ReadDir(name string) ([]fs.FileInfo, error) {
	d, err := t.open("readdir", name, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	all, err := d.Readdir(-1) // lstat, relative to d
	if err != nil {
		return nil, err
	}
	all = slices.DeleteFunc(all, func(fi fs.FileInfo) bool { return isDotGit(fi.Name()) || !kept(fi.Mode()) })
	slices.SortFunc(all, func(a, b fs.FileInfo) int { return strings.Compare(a.Name(), b.Name()) })
	return all, nil
}

func (t *treeFS) Stat(name string) (fs.FileInfo, error)  { return t.stat("stat", name, t.root.Stat) }
func (t *treeFS) Lstat(name string) (fs.FileInfo, error) { return t.stat("lstat", name, t.root.Lstat) }

func (t *treeFS) stat(op, name string, stat func(string) (fs.FileInfo, error)) (fs.FileInfo, error) {
	n, err := rel(op, name)
	if err != nil {
		return nil, err
	}
	fi, err := stat(n)
	if err == nil && !kept(fi.Mode()) {
		return nil, notExist(op, name)
	}
	return fi, err
}

func (t *treeFS) Readlink(name string) (string, error) {
	n, err := rel("readlink", name)
	if err != nil {
		return "", err
	}
	return t.root.Readlink(n)
}

func (t *treeFS) Symlink(target, link string) error {
	n, err := rel("symlink", link)
	if err != nil {
		return err
	}
	if err := t.root.MkdirAll(path.Dir(n), 0o755); err != nil {
		return err
	}
	return t.root.Symlink(target, n)
}

func (t *treeFS) MkdirAll(name string, perm fs.FileMode) error {
	n, err := rel("mkdir", name)
	if err != nil {
		return err
	}
	return t.root.MkdirAll(n, perm)
}

func (t *treeFS) Remove(name string) error {
	n, err := rel("remove", name)
	if err != nil {
		return err
	}
	return t.root.Remove(n)
}

func (t *treeFS) Rename(from, to string) error {
	f, err := rel("rename", from)
	if err != nil {
		return err
	}
	n, err := rel("rename", to)
	if err != nil {
		return err
	}
	return t.root.Rename(f, n)
}

func (t *treeFS) Join(elem ...string) string { return filepath.Join(elem...) }

func (t *treeFS) Root() string { return t.root.Name() }

// TempFile and Chroot: go-git's worktree needs neither (a submodule it
// never initialises would be the only caller of Chroot).
func (t *treeFS) TempFile(string, string) (billy.File, error) { return nil, billy.ErrNotSupported }
func (t *treeFS) Chroot(string) (billy.Filesystem, error)     { return nil, billy.ErrNotSupported }

type treeFile struct {
	*os.File
	name string
}

func (f *treeFile) Name() string { return f.name }

// Lock and Unlock: billy's advisory locks guard go-git's own files, all of
// which are in gitDir.
func (f *treeFile) Lock() error   { return nil }
func (f *treeFile) Unlock() error { return nil }
