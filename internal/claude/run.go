package claude

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Why a run was stopped (Exit.Reason). The caller maps ErrTimeout and
// ErrIdle to the app's "Request timed out".
var (
	ErrTimeout   = errors.New("claude: run timed out")
	ErrIdle      = errors.New("claude: no output from the CLI for too long")
	ErrCancelled = errors.New("claude: run cancelled")
)

// Start errors, wrapped with the path: test with errors.Is.
var (
	ErrNotFound      = errors.New("claude CLI not found")
	ErrNotExecutable = errors.New("not executable")
)

// RunMarkerVar marks every process of a run: Start sets it to a random id
// in the CLI's environment, and the processes it starts inherit it.
const RunMarkerVar = "OVRLRD_RUN"

// Mode is the CLI's output format.
type Mode int

const (
	// Stream runs `-p --output-format stream-json --verbose` and delivers
	// each stdout line, parsed, on Events.
	Stream Mode = iota
	// Text runs `-p --output-format text` (title runs): stdout is kept, up
	// to MaxLine bytes, in Exit.Output; Events delivers nothing, and
	// IdleTimeout does not apply (the answer comes at the end).
	Text
)

// stderrLimit bounds the stderr kept in Exit.Stderr; the rest is dropped.
const stderrLimit = 64 << 10

// Options describe one CLI run. Its total deadline is ctx's.
type Options struct {
	Path           string   // the CLI executable; without a slash it is looked up in Env's PATH
	Dir            string   // working directory (per conversation); created (0700) if missing
	ConfigDir      string   // CLAUDE_CONFIG_DIR; created (0700) if missing. Env must carry it too (see Environment)
	AdditionalDirs []string // --add-dir each
	AllowedTools   []string // joined by one space into ONE --allowedTools argument, if non-empty
	Resume         string   // --resume <id>, if non-empty
	Prompt         string   // written to stdin, which is then closed (unless Asks); empty: stdin is /dev/null
	Mode           Mode
	// Asks makes a tool call outside AllowedTools wait for Answer (see
	// Event.Ask) instead of being denied, and the CLI's silence while an
	// answer is awaited no idleness. Stream mode only.
	Asks bool

	// Env is the CLI's whole environment (see Environment): nothing of this
	// process's is inherited. Start appends RunMarkerVar.
	Env        []string
	Credential *syscall.Credential // the user the CLI runs as; nil: this process's

	IdleTimeout time.Duration // no stdout for this long stops the run; 0: none
	MaxLine     int           // longest stdout line kept (if 0, 8 MiB); longer ones are skipped and counted
	KillGrace   time.Duration // SIGTERM to SIGKILL delay (if 0, 2s)
	ExtraArgs   []string      // appended verbatim after the arguments above
}

// Args returns the CLI's arguments (without the program name), in the
// contract's order.
func (o Options) Args() []string {
	args := []string{"-p", "--output-format", "stream-json", "--verbose"}
	if o.Mode == Text {
		args = []string{"-p", "--output-format", "text"}
	} else if o.asking() {
		args = append(args, "--input-format", "stream-json", "--permission-prompt-tool", "stdio")
	}
	if len(o.AllowedTools) > 0 {
		args = append(args, "--allowedTools", strings.Join(o.AllowedTools, " "))
	}
	for _, d := range o.AdditionalDirs {
		args = append(args, "--add-dir", d)
	}
	if o.Resume != "" {
		args = append(args, "--resume", o.Resume)
	}
	return append(args, o.ExtraArgs...)
}

// Exit is how a run ended.
type Exit struct {
	Code   int            // the CLI's exit code; -1 if a signal killed it
	Signal syscall.Signal // the signal that killed it, or 0
	// Reason is why the run was stopped: nil (it ended by itself),
	// ErrTimeout, ErrIdle, ErrCancelled (ctx cancelled; wraps the cause), or
	// the error given to Stop.
	Reason error
	Stderr string // its first 64 KiB; not redacted (see Redact)
	Output string // Text mode: stdout, at most MaxLine bytes
	// StdinErr is the error writing the prompt (the CLI died before reading
	// it all), or nil: the run goes on without it.
	StdinErr error

	BadLines  int // stdout lines that ParseLine rejected (skipped)
	HugeLines int // stdout lines longer than MaxLine (skipped)
	// Tampered counts lines no genuine CLI prints there (see vetter):
	// dropped, or delivered without the suspect part.
	Tampered     int
	TamperReason string // why the first one was suspect
}

// Run is a started CLI process.
//
// Receive from Events until it is closed, then call Wait. Stop may be called
// at any time, and Wait more than once, from any goroutine. Call
// BecomeSubreaper once per process so that what a run leaves behind is
// reaped.
type Run struct {
	opts   Options
	cmd    *exec.Cmd // its Process.Pid is the id of the CLI's session and process group too
	marker []byte    // RunMarkerVar=<id>, as the run's environments hold it
	ctx    context.Context
	runCtx context.Context // ends the run (cmd.Cancel) when done
	stop   context.CancelCauseFunc

	events chan Event
	stdout *os.File
	stderr *os.File
	stdin  io.WriteCloser // nil without a prompt
	asks   asks
	exited atomic.Bool   // the CLI has exited: the pipes end with what they hold now
	waitCh chan struct{} // Wait called: stop delivering events
	wg     sync.WaitGroup
	wait   func() (Exit, error)

	mu       sync.Mutex // terminate's findings, for supervise
	reason   error
	graceEnd time.Time

	// Each written by one goroutine of the run, read once they have ended.
	exit Exit
	vet  vetter
}

// Pid is the CLI's process id.
func (r *Run) Pid() int { return r.cmd.Process.Pid }

// Events delivers each stdout line parsed by ParseLine, in order, from one
// reader goroutine; each Event is the receiver's own. Lines that do not
// parse, or are longer than MaxLine, are skipped and counted in Exit. The
// channel is closed when stdout ends, no later than the CLI's exit. Once
// Wait is called, events not yet received are dropped. In Text mode
// nothing is delivered.
func (r *Run) Events() <-chan Event { return r.events }

// Start starts the CLI. It fails, without starting anything, if the
// executable is missing (ErrNotFound) or not executable (ErrNotExecutable),
// or if a directory cannot be created.
func Start(ctx context.Context, o Options) (*Run, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if o.MaxLine <= 0 {
		o.MaxLine = 8 << 20
	}
	if o.KillGrace <= 0 {
		o.KillGrace = 2 * time.Second
	}
	path, err := resolve(o.Path, o.Env)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{o.Dir, o.ConfigDir} {
		if d == "" {
			continue
		}
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("claude: %w", err)
		}
	}
	r := &Run{opts: o, ctx: ctx, events: make(chan Event, 64), waitCh: make(chan struct{}),
		marker: []byte(RunMarkerVar + "=" + rand.Text()), vet: vetter{asks: o.asking()}}
	if o.asking() {
		r.asks.lines = make(chan []byte, inputQueue)
	}
	r.runCtx, r.stop = context.WithCancelCause(ctx)
	cmd := exec.CommandContext(r.runCtx, path, o.Args()...)
	cmd.Args[0] = o.Path
	cmd.Env = append(slices.DeleteFunc(slices.Clone(o.Env), func(kv string) bool {
		return strings.HasPrefix(kv, RunMarkerVar+"=")
	}), string(r.marker))
	cmd.Dir, cmd.SysProcAttr = o.Dir, sysProcAttr(o.Credential)
	cmd.Cancel = func() error { return r.terminate(cmd.Process.Pid) }
	cmd.WaitDelay = o.KillGrace
	var outW, errW *os.File
	if r.stdout, outW, err = os.Pipe(); err == nil {
		if r.stderr, errW, err = os.Pipe(); err == nil && (o.Prompt != "" || o.asking()) {
			r.stdin, err = cmd.StdinPipe()
		}
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	if err == nil {
		err = startCLI(cmd)
	}
	outW.Close() // the CLI holds its own copies
	errW.Close()
	if err != nil {
		r.stdout.Close()
		r.stderr.Close()
		r.stop(nil)
		if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.ENOEXEC) {
			return nil, fmt.Errorf("claude CLI at %s: %w: %v", o.Path, ErrNotExecutable, err)
		}
		return nil, fmt.Errorf("claude CLI at %s could not be started: %w", o.Path, err)
	}
	r.cmd = cmd
	r.wait = sync.OnceValues(r.collect)
	r.wg.Go(r.readStdout)
	r.wg.Go(r.readStderr)
	r.wg.Go(r.supervise)
	switch {
	case o.asking():
		r.wg.Go(r.feed)
	case r.stdin != nil:
		r.wg.Go(r.writePrompt)
	}
	return r, nil
}

// writePrompt writes the prompt to stdin and closes it (a run that asks
// has feed instead). Should a process of the run keep stdin open unread,
// the CLI's Wait closes it.
func (r *Run) writePrompt() {
	_, err := io.WriteString(r.stdin, r.opts.Prompt)
	if err := cmp.Or(err, r.stdin.Close()); err != nil {
		r.exit.StdinErr = fmt.Errorf("claude: writing the prompt: %w", err)
	}
}

func (o Options) asking() bool { return o.Asks && o.Mode == Stream }

// resolve finds the executable, looking a bare name up in env's PATH (not
// this process's).
func resolve(name string, env []string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("%w: no path configured", ErrNotFound)
	}
	if strings.Contains(name, "/") {
		// Absolute: exec would take a relative path from the run's Dir.
		abs, err := filepath.Abs(name)
		if err != nil {
			return "", fmt.Errorf("claude CLI at %s: %w", name, err)
		}
		return abs, checkExecutable(abs, name)
	}
	var pathVar string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathVar = v
		}
	}
	var firstErr error
	for _, dir := range filepath.SplitList(pathVar) {
		if !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, name)
		switch err := checkExecutable(p, name); {
		case err == nil:
			return p, nil
		case errors.Is(err, ErrNotExecutable):
			firstErr = cmp.Or(firstErr, err)
		}
	}
	return "", cmp.Or(firstErr, fmt.Errorf("%w: %q is not in the run's PATH", ErrNotFound, name))
}

func checkExecutable(p, shown string) error {
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w at %s", ErrNotFound, shown)
	case err != nil:
		return fmt.Errorf("claude CLI at %s: %w", shown, err)
	case fi.IsDir() || fi.Mode()&0o111 == 0:
		return fmt.Errorf("claude CLI at %s: %w", shown, ErrNotExecutable)
	}
	return nil
}

// Stop stops the run: SIGTERM to the CLI's process group and to every
// process of the run, SIGKILL after KillGrace, until all are gone. Exit.Reason
// becomes reason (ErrCancelled if nil), unless the run already ended or was
// already stopped. It does not wait: call Wait.
func (r *Run) Stop(reason error) { r.stop(cmp.Or(reason, ErrCancelled)) }

// Wait waits until the CLI and every process it started are gone, and every
// goroutine of the run has ended. It returns the Exit and an error that is
// nil only if the CLI exited with code 0 by itself: Reason if the run was
// stopped, otherwise an error naming the exit code or signal. Events not yet
// received are dropped.
func (r *Run) Wait() (Exit, error) { return r.wait() }

func (r *Run) collect() (Exit, error) {
	close(r.waitCh)
	r.wg.Wait()
	e := r.exit
	switch {
	case e.Reason != nil:
		return e, e.Reason
	case e.Signal != 0:
		return e, fmt.Errorf("claude CLI killed by signal %v", e.Signal)
	case e.Code != 0:
		return e, fmt.Errorf("claude CLI exited with code %d", e.Code)
	}
	return e, nil
}
