// Package sandbox confines what one turn's tools can reach on this machine.
//
// The Claude Code CLI runs the commands the model chooses, and a user who
// approves Bash, or a file that steers the model, may be hostile. Each turn
// gets a Box: the user its processes run as, folders only that user can
// open, and, when the turn ends, a sweep that ends every process the turn
// could have started and removes every file it left behind.
//
// How strong that is depends on where the server runs (see Mode):
//
//   - PerTurnUser, when the server is root (containers, CI, make dev as
//     root): each turn's CLI runs as a user of its own, taken from a range.
//     Other turns' folders are closed to it, and its processes are found by
//     their user, whatever they do to their environment, group or session.
//   - Exclusive, in Lambda: the server is unprivileged and an execution
//     environment serves one invocation at a time. The CLI runs as the
//     server's user; every process of that user that is not the server, one
//     of its ancestors, or older than the turn is the turn's; and every
//     conversation's folders are removed after each turn.
//   - Shared, an unprivileged local server: turns of several users run at
//     once as the server's own user. Only the CLI's own process tree is swept
//     (by the claude package), and one turn's tools can read another's
//     folders. The README says so.
package sandbox

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// Mode is how strongly turns are kept apart.
type Mode int

const (
	Shared Mode = iota
	Exclusive
	PerTurnUser
)

// Detect picks the mode for this process: PerTurnUser as root, Exclusive in
// Lambda, Shared otherwise.
func Detect(inLambda bool) Mode {
	switch {
	case os.Geteuid() == 0 && supported:
		return PerTurnUser
	case inLambda && supported:
		return Exclusive
	}
	return Shared
}

// Range is the user ids PerTurnUser hands out, inclusive.
type Range struct{ First, Last uint32 }

// Config configures a Pool.
type Config struct {
	Mode Mode
	UIDs Range // PerTurnUser only
	// Roots are the folders that turns' folders live under (the working
	// folders and the CLI's config folders), at least one: each turn's
	// TMPDIR is made in the first. They are created if missing. Exclusive
	// mode empties them after every turn.
	Roots []string
	Log   *slog.Logger
}

// Pool hands out Boxes.
type Pool struct {
	cfg Config

	mu    sync.Mutex
	inUse map[uint32]bool
	next  uint32
}

// New checks cfg and prepares the roots. In PerTurnUser mode every folder
// above a root must be traversable by other users (the turn's user has to
// reach its own folder), and the roots become traversable but not listable.
func New(cfg Config) (*Pool, error) {
	cfg.Log = cmp.Or(cfg.Log, slog.New(slog.DiscardHandler))
	if cfg.Mode == PerTurnUser {
		if cfg.UIDs.First == 0 || cfg.UIDs.Last < cfg.UIDs.First {
			return nil, fmt.Errorf("sandbox: the user id range %d-%d is empty or includes root", cfg.UIDs.First, cfg.UIDs.Last)
		}
		if err := prepareLocks(); err != nil {
			return nil, err
		}
		// What turns create is their own: a file a tool writes to a
		// shared folder is not readable by the turn running beside it.
		syscall.Umask(0o077)
	}
	if len(cfg.Roots) == 0 {
		return nil, errors.New("sandbox: no folder for turns' folders")
	}
	for _, root := range cfg.Roots {
		if err := prepareRoot(root, cfg.Mode); err != nil {
			return nil, err
		}
	}
	p := &Pool{cfg: cfg, inUse: map[uint32]bool{}, next: cfg.UIDs.First}
	if n := uint64(cfg.UIDs.Last) - uint64(cfg.UIDs.First) + 1; cfg.Mode == PerTurnUser && n > 1 {
		// Servers sharing a machine (test binaries) start far apart.
		p.next = cfg.UIDs.First + uint32(rand.Uint64N(n))
	}
	return p, nil
}

// Mode is the pool's mode.
func (p *Pool) Mode() Mode { return p.cfg.Mode }

func prepareRoot(root string, m Mode) error {
	if err := mkdirTraversable(root); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	if m != PerTurnUser {
		return nil
	}
	// Turn users may open their own folder by name, but not list the others.
	if err := os.Chmod(root, 0o711); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	for dir := filepath.Dir(root); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("sandbox: %s cannot be traversed by the turns' users (it needs o+x), so they cannot reach %s; choose a folder below a traversable one", dir, root)
		}
		if dir == filepath.Dir(dir) {
			return nil
		}
	}
}

// mkdirTraversable creates dir and its missing parents with mode 0711. The
// pool's private umask would leave them 0700 (MkdirAll), which turn users
// cannot pass through. Folders that exist keep their mode.
func mkdirTraversable(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := mkdirTraversable(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o711); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil
		}
		return err
	}
	return os.Chmod(dir, 0o711)
}

// Box is one turn's confinement. Own is safe for concurrent use; its other
// methods are for one goroutine at a time. Release ends it.
type Box struct {
	pool  *Pool
	uid   int        // -1 unless PerTurnUser
	lock  *os.File   // PerTurnUser: holds the user id against other servers
	mu    sync.Mutex // Own is called by the turn and its title run at once
	owned []string
	tmp   string
	swept bool // nothing of the turn has run since the last sweep
}

// Acquire starts a Box. In PerTurnUser mode it takes a user id that no
// process runs as.
func (p *Pool) Acquire() (*Box, error) {
	// The roots may be gone: Exclusive mode's scrub removes what this user
	// owns in the temporary folders.
	for _, root := range p.cfg.Roots {
		if err := prepareRoot(root, p.cfg.Mode); err != nil {
			return nil, err
		}
	}
	b := &Box{pool: p, uid: -1}
	if p.cfg.Mode == PerTurnUser {
		uid, lock, err := p.take()
		if err != nil {
			return nil, err
		}
		b.uid, b.lock = int(uid), lock
	}
	dir, err := os.MkdirTemp(p.cfg.Roots[0], ".tmp-")
	if err != nil {
		b.Release()
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	b.tmp = dir
	if err := b.Own(dir); err != nil {
		b.Release()
		return nil, err
	}
	return b, nil
}

// take hands out a user id that no turn of this server holds, that no
// other server on this machine has locked, and that runs nothing (a crash
// may have left something behind): two servers never share one.
func (p *Pool) take() (uint32, *os.File, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.cfg.UIDs
	n := uint64(r.Last-r.First) + 1
	for i := uint64(0); i < n; i++ {
		uid := p.next
		p.next = r.First + uint32((uint64(uid-r.First)+1)%n)
		if p.inUse[uid] {
			continue
		}
		lock, ok := lockUID(uid)
		if !ok {
			continue
		}
		if running(int(uid)) {
			lock.Close()
			continue
		}
		p.inUse[uid] = true
		return uid, lock, nil
	}
	return 0, nil, errors.New("sandbox: every user id of the range is in use")
}

// Credential is the user the turn's processes run as, or nil to run them as
// this process's user.
func (b *Box) Credential() *syscall.Credential {
	if b.uid < 0 {
		return nil
	}
	return credential(b.uid)
}

// credential is uid's, with its own group and no other.
func credential(uid int) *syscall.Credential {
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid), Groups: []uint32{}}
}

// TempDir is the turn's own TMPDIR.
func (b *Box) TempDir() string { return b.tmp }

// Own hands folders to the turn: each is created if missing (0700), and in
// PerTurnUser mode everything in it becomes the turn user's. Release
// removes them. The walk stays inside each folder whatever is swapped in
// during it (os.Root), so a symlink planted by a tool never makes the
// server change a file elsewhere.
func (b *Box) Own(dirs ...string) error {
	b.mu.Lock()
	b.owned = append(b.owned, dirs...)
	b.mu.Unlock()
	for _, dir := range dirs {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		if b.uid < 0 {
			continue
		}
		root, err := os.OpenRoot(dir)
		if err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		err = fs.WalkDir(root.FS(), ".", func(path string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return root.Lchown(path, b.uid, b.uid)
		})
		root.Close()
		if err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
	}
	return nil
}

// Sweep ends every process the turn could have started: in PerTurnUser
// mode every process of its user; in Exclusive mode every descendant of
// this process and every process of its user but this one and its
// ancestors. It returns how many processes it found running. Shared mode
// sweeps nothing here.
func (b *Box) Sweep() int {
	b.swept = true
	n := 0
	switch b.pool.cfg.Mode {
	case PerTurnUser:
		n = killUser(b.uid)
	case Exclusive:
		n = killTurn(os.Getuid())
	}
	if n > 0 {
		b.pool.cfg.Log.Warn("sandbox: ended processes the turn left running", "count", n)
	}
	return n
}

// Release sweeps (unless the caller just did, and ran nothing of the turn
// since), then removes what the turn may have written: the folders
// it owned (in Exclusive mode every conversation's), and, in PerTurnUser
// and Exclusive modes, whatever its user left in the world-writable
// folders. The user id goes back to the pool.
func (b *Box) Release() error {
	if !b.swept {
		b.Sweep()
	}
	var errs []error
	b.mu.Lock()
	owned := b.owned
	b.mu.Unlock()
	for _, dir := range owned {
		errs = append(errs, removeTree(dir))
	}
	switch b.pool.cfg.Mode {
	case Exclusive:
		for _, root := range b.pool.cfg.Roots {
			errs = append(errs, emptyDir(root))
		}
		scrubShared(os.Getuid())
	case PerTurnUser:
		scrubShared(b.uid)
		b.pool.mu.Lock()
		delete(b.pool.inUse, uint32(b.uid))
		b.pool.mu.Unlock()
		b.lock.Close()
	}
	return errors.Join(errs...)
}

// emptyDir removes everything inside dir, keeping dir.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir) // none if dir is missing
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sandbox: %w", err)
	}
	var errs []error
	for _, e := range entries {
		errs = append(errs, removeTree(filepath.Join(dir, e.Name())))
	}
	return errors.Join(errs...)
}

// removeTree is os.RemoveAll that also gets through folders a tool made
// unwritable (chmod 000): they are ours, so they are opened up first,
// without leaving the tree whatever is swapped in meanwhile.
func removeTree(path string) error {
	if err := os.RemoveAll(path); err == nil {
		return nil
	}
	if fi, err := os.Lstat(path); err == nil && fi.IsDir() {
		_ = os.Chmod(path, 0o700)
	}
	if root, err := os.OpenRoot(path); err == nil {
		_ = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
			if d != nil && d.IsDir() {
				_ = root.Chmod(p, 0o700)
			}
			return nil
		})
		root.Close()
	}
	if err := os.RemoveAll(path); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	return nil
}
