// Package repo is the git side of a project: check a user's repository,
// fetch one branch, check out a conversation's branch, show and commit the
// changes, and push that branch. Everything goes over HTTPS with a
// fine-grained token that lives only in memory: go-git sends it as basic
// auth per request and never writes it to a config file, the environment
// or a log.
//
// The tools that edit a conversation's files are hostile (a user may allow
// them to run commands, and a file can steer the model), so the server's
// git directory (objects, refs, index, config) is never in their folder:
// gitDir is the server's alone, and workDir holds only the checked-out
// files. Anything named .git in workDir is invisible to the server (see
// treeFS), so a planted config, alternates file or gitdir pointer is never
// read.
package repo

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// Remote is a repository and the token that reaches it.
type Remote struct {
	URL, Token    string
	CABundle      []byte // extra trusted roots; tests only
	AllowLoopback bool   // the local stage, whose git server is on 127.0.0.1
}

// defaultTimeout bounds a network call whose caller set no deadline, so a
// stalled server cannot hold a Lambda until it is killed.
const defaultTimeout = 2 * time.Minute

// branchPrefix starts every branch the server creates, commits to or
// pushes, so that nothing it does can touch the user's own branches.
const branchPrefix = "ovrlrd/"

func (r Remote) auth() transport.AuthMethod {
	if r.Token == "" {
		return nil // a public repository: no credentials at all
	}
	// Hosts take any username with a token; GitHub documents this one.
	return &githttp.BasicAuth{Username: "x-access-token", Password: r.Token}
}

// begin validates the branches and the URL, makes sure the guarded
// transport is still the one go-git uses, and returns the context every
// network call runs under.
func (r Remote) begin(ctx context.Context, branches ...string) (context.Context, context.CancelFunc, error) {
	for _, b := range branches {
		if err := checkBranch(b); err != nil {
			return nil, nil, err
		}
	}
	if err := CheckURL(r.URL); err != nil {
		return nil, nil, err
	}
	if err := checkTransport(); err != nil {
		return nil, nil, err
	}
	cancel := context.CancelFunc(func() {})
	if _, ok := ctx.Deadline(); !ok {
		ctx, cancel = context.WithTimeout(ctx, defaultTimeout)
	}
	return withPolicy(ctx, r.AllowLoopback), cancel, nil
}

// CheckURL accepts only plain https URLs with a host: no credentials (the
// token is kept apart), and nothing a later string join could misread.
// Where the URL may lead is the guard's to decide, on each address dialled
// (see control): outside the local stage only public addresses on port
// 443, so a URL naming another port passes here and is refused there as
// an address that is not allowed.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case raw == "" || err != nil:
		return ovrlrd.Errorf(ovrlrd.EINVALID, "The repository URL is not a valid URL.")
	case u.Scheme != "https":
		return ovrlrd.Errorf(ovrlrd.EINVALID, "The repository URL must start with https://.")
	case u.User != nil:
		return ovrlrd.Errorf(ovrlrd.EINVALID, "The repository URL must not contain a user name or password; the token is given separately.")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(raw, "?#"):
		return ovrlrd.Errorf(ovrlrd.EINVALID, "The repository URL must not contain a query or a fragment.")
	case u.Hostname() == "":
		return ovrlrd.Errorf(ovrlrd.EINVALID, "The repository URL must name a host.")
	}
	return nil
}

func checkBranch(name string) error {
	if name == "" || plumbing.NewBranchReferenceName(name).Validate() != nil {
		return ovrlrd.Errorf(ovrlrd.EINVALID, "%q is not a valid branch name.", name)
	}
	return nil
}

// checkOwnBranch accepts only the server's own branches.
func checkOwnBranch(name string) error {
	if !strings.HasPrefix(name, branchPrefix) {
		return ovrlrd.Errorf(ovrlrd.EINVALID, "%q is not a conversation branch.", name)
	}
	return checkBranch(name)
}

func parseHash(s string) (plumbing.Hash, error) {
	if !plumbing.IsHash(s) {
		return plumbing.ZeroHash, fmt.Errorf("repo: %q is not a commit hash", s)
	}
	return plumbing.NewHash(s), nil
}

// errTooLarge is the cause of both size limits.
var errTooLarge = errors.New("repo: size limit exceeded")

// userError turns a go-git error into a message for the user, keeping only
// a sanitized cause for logs. What the user must fix is EINVALID; what may
// pass if tried again (a timeout, a refused or reset connection, the
// host's own 5xx) is EUNAVAILABLE, which is not the request's fault.
func userError(err error, access string) error {
	switch _, domain := errors.AsType[*ovrlrd.Error](err); {
	case err == nil:
		return nil
	case domain:
		return err
	case is(err, errRefused):
		return ovrlrd.Wrap(ovrlrd.EINVALID, "The repository's address is not allowed.", cause(err))
	case is(err, transport.ErrAuthenticationRequired), is(err, transport.ErrAuthorizationFailed):
		return ovrlrd.Wrap(ovrlrd.EINVALID, "The token cannot "+access+" this repository.", cause(err))
	case is(err, transport.ErrRepositoryNotFound):
		return ovrlrd.Wrap(ovrlrd.EINVALID, "The repository was not found.", cause(err))
	case is(err, transport.ErrEmptyRemoteRepository):
		return ovrlrd.Wrap(ovrlrd.EINVALID, "The repository is empty.", cause(err))
	case transient(err):
		return ovrlrd.Wrap(ovrlrd.EUNAVAILABLE, "The repository's host did not answer. Please try again.", cause(err))
	case hostNotFound(err):
		return ovrlrd.Wrap(ovrlrd.EINVALID, "The repository's host was not found.", cause(err))
	case untrusted(err):
		return ovrlrd.Wrap(ovrlrd.EINVALID, "The repository's certificate is not trusted.", cause(err))
	}
	return ovrlrd.Wrap(ovrlrd.EINVALID, "The repository cannot be reached.", cause(err))
}

// transient reports whether err may pass if the call is made again: a
// deadline or timeout (a DNS one included), a DNS server failing, a
// connection to an allowed address refused, reset or unroutable, or a 5xx
// from the host.
func transient(err error) bool {
	return walk(err, func(e error) bool {
		switch e := e.(type) {
		case *net.DNSError:
			return e.IsTimeout || e.IsTemporary
		case *githttp.Err:
			return e.StatusCode() >= 500 && e.StatusCode() <= 599
		case interface{ Timeout() bool }:
			if e.Timeout() {
				return true
			}
		}
		for _, k := range unanswered {
			if e == k {
				return true
			}
		}
		return false
	})
}

// unanswered are the errors of a connection or request the host did not
// answer, which a later try may find answered.
var unanswered = []error{
	context.DeadlineExceeded,
	syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED,
	syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ETIMEDOUT,
}

// hostNotFound reports a name that does not resolve. A DNS timeout or
// server failure is transient instead, and is tested first.
func hostNotFound(err error) bool {
	_, ok := as[*net.DNSError](err)
	return ok
}

// untrusted reports a certificate that fails verification: an unknown
// authority, another host's name, an expired or otherwise invalid one.
func untrusted(err error) bool {
	return walk(err, func(e error) bool {
		switch e.(type) {
		case *tls.CertificateVerificationError, x509.UnknownAuthorityError,
			x509.HostnameError, x509.CertificateInvalidError:
			return true
		}
		return false
	})
}

// walk calls f on err and on each error it wraps, looking through go-git's
// wrappers that have no Unwrap method (a request that fails after the
// first comes back as a *plumbing.UnexpectedError), until f returns true.
func walk(err error, f func(error) bool) bool {
	for err != nil {
		if f(err) {
			return true
		}
		switch e := err.(type) {
		case *plumbing.UnexpectedError:
			err = e.Err
		case *plumbing.PermanentError:
			err = e.Err
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				if walk(inner, f) {
					return true
				}
			}
			return false
		default:
			err = errors.Unwrap(err)
		}
	}
	return false
}

// is is errors.Is through go-git's wrappers.
func is(err, target error) bool {
	return walk(err, func(e error) bool { return errors.Is(e, target) })
}

// as is errors.AsType through go-git's wrappers.
func as[T error](err error) (found T, ok bool) {
	walk(err, func(e error) bool {
		found, ok = errors.AsType[T](e)
		return ok
	})
	return found, ok
}

// kinds are the errors a log may name as they are.
var kinds = []error{
	errRefused, transport.ErrAuthenticationRequired, transport.ErrAuthorizationFailed,
	transport.ErrRepositoryNotFound, transport.ErrEmptyRemoteRepository,
	context.DeadlineExceeded, context.Canceled,
}

// cause is what a log may keep of a go-git error. go-git puts the server's
// response body into the text of its errors, and a server can put anything
// there, the token it was sent included; so a log gets the error's kind,
// the HTTP status, or an error this process made (a dial or a file), and
// otherwise the types along the chain, never the text. (A certificate's
// names are the server's text too, so a TLS error is logged by its types.)
func cause(err error) error {
	for _, k := range kinds {
		if is(err, k) {
			return k
		}
	}
	if h, ok := as[*githttp.Err](err); ok {
		return fmt.Errorf("repo: HTTP status %d", h.StatusCode())
	}
	if e, ok := as[*net.OpError](err); ok {
		return e
	}
	if e, ok := as[*fs.PathError](err); ok {
		return e
	}
	var types []string
	walk(err, func(e error) bool {
		types = append(types, fmt.Sprintf("%T", e))
		return false
	})
	return fmt.Errorf("repo: %s", strings.Join(types, " > "))
}

func size(n int64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%d MB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// errNotEmpty: claim found something in the directory.
var errNotEmpty = errors.New("repo: directory not empty")

// claim makes sure dir is absent or empty, creating it when absent. Its
// undo removes only what the call added: dir itself when it was absent,
// else everything in it. Any error reading dir other than its absence is
// returned, so an unreadable directory is never taken for an empty one.
func claim(dir string, perm fs.FileMode) (undo func(), err error) {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return nil, err
		}
		// Mkdir, not MkdirAll: a dir that appeared meanwhile is not ours.
		if err := os.Mkdir(dir, perm); err != nil {
			return nil, err
		}
		return func() { os.RemoveAll(dir) }, nil
	case err != nil:
		return nil, err
	case len(entries) > 0:
		return nil, fmt.Errorf("%w: %s", errNotEmpty, dir)
	}
	return func() {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}, nil
}

// gitStorage is the server's git directory. Only the server writes there,
// so go-git's own bound file system is enough.
func gitStorage(gitDir string) *filesystem.Storage {
	return filesystem.NewStorage(osfs.New(gitDir, osfs.WithBoundOS()), cache.NewObjectLRUDefault())
}

// inTree runs f on the repository in st with workDir as its working tree.
func inTree(st storage.Storer, workDir string, f func(*git.Repository, *git.Worktree) error) error {
	tree, err := newTreeFS(workDir)
	if err != nil {
		return err
	}
	defer tree.Close()
	repo, err := git.Open(st, tree)
	if err != nil {
		return err
	}
	wt, err := repo.Worktree()
	if err != nil {
		return err
	}
	return f(repo, wt)
}
