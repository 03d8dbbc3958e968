package claude

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
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

// RunMarkerVar is the environment variable that marks every process of a
// run: Start sets it to a random id in the CLI's environment, and the
// processes it starts inherit it.
const RunMarkerVar = "OVRLRD_RUN"

// Mode is the CLI's output format.
type Mode int

const (
	// Stream runs `-p --output-format stream-json --verbose` and delivers
	// each stdout line, parsed, on Events.
	Stream Mode = iota
	// Text runs `-p --output-format text` (title runs): stdout is not
	// parsed but kept, up to MaxLine bytes, in Exit.Output; Events delivers
	// nothing, and IdleTimeout does not apply (the answer comes at the end).
	Text
)

// Defaults for the zero Options fields.
const (
	DefaultMaxLine     = 8 << 20
	DefaultStderrLimit = 64 << 10
	DefaultKillGrace   = 2 * time.Second
)

// Options describe one CLI run.
type Options struct {
	Path           string   // the CLI executable; without a slash it is looked up in Env's PATH
	Dir            string   // working directory (per conversation); created (0700) if missing
	ConfigDir      string   // CLAUDE_CONFIG_DIR; created (0700) if missing. Env must carry it too (see Environment)
	AdditionalDirs []string // --add-dir each
	AllowedTools   []string // joined by one space into ONE --allowedTools argument, if non-empty
	Resume         string   // --resume <id>, if non-empty
	Prompt         string   // written to stdin, which is then closed; empty: stdin is /dev/null
	Mode           Mode     // Stream (default) or Text

	// Env is the CLI's whole environment (see Environment). Nothing of this
	// process's environment is inherited. Start appends RunMarkerVar.
	Env []string
	// Credential is the user the CLI runs as; nil: this process's.
	Credential *syscall.Credential

	Timeout     time.Duration // total, from Start; 0: only ctx's deadline
	IdleTimeout time.Duration // no stdout for this long stops the run; 0: none
	MaxLine     int           // longest stdout line kept (DefaultMaxLine); longer ones are skipped and counted
	StderrLimit int           // stderr bytes kept (DefaultStderrLimit); the rest is dropped
	KillGrace   time.Duration // SIGTERM to SIGKILL delay (DefaultKillGrace)
	ExtraArgs   []string      // appended verbatim after the arguments above
}

// Args returns the CLI's arguments (without the program name), in the
// contract's order: -p, --output-format stream-json, --verbose,
// --allowedTools "<joined>", --add-dir each, --resume id, then ExtraArgs.
func (o Options) Args() []string {
	args := []string{"-p", "--output-format"}
	if o.Mode == Text {
		args = append(args, "text")
	} else {
		args = append(args, "stream-json", "--verbose")
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

	Stderr          string // at most StderrLimit bytes; not redacted (see Redact)
	StderrTruncated bool
	Output          string // Text mode: stdout, at most MaxLine bytes

	BadLines  int    // stdout lines that ParseLine rejected (skipped)
	HugeLines int    // stdout lines longer than MaxLine (skipped)
	BadSample string // the first rejected line, redacted and cut to 200 bytes
	// Tampered counts lines no genuine CLI prints there (a second init or
	// result, anything after the result, an id that is not a UUID,
	// impossible usage): dropped, or delivered without the suspect part.
	Tampered     int
	TamperReason string // why the first one was suspect

	// StdinErr is the error writing the prompt (the CLI died before reading
	// it all), or nil.
	StdinErr error
	// Strays counts the run's other processes (a tool's children, also
	// those that left the CLI's session) found alive when the run was
	// stopped or when the CLI ended; each was signalled until it was gone.
	Strays   int
	Duration time.Duration
}

// Run is a started CLI process.
//
// Receive from Events until it is closed, then call Wait. Stop may be called
// at any time, and Wait more than once, from any goroutine. Call
// BecomeSubreaper once per process so that what a run leaves behind is
// reaped.
type Run struct {
	opts   Options
	cmd    *exec.Cmd
	pid    int
	marker []byte // "OVRLRD_RUN=<id>"
	id     string
	start  time.Time

	events chan Event
	stdout *os.File
	stderr *os.File
	stdin  *os.File // nil without a prompt

	exited   chan struct{} // the CLI has exited (not yet reaped)
	stopCh   chan struct{}
	waitCh   chan struct{} // Wait called: stop delivering events
	stopOnce sync.Once
	waitOnce sync.Once
	wg       sync.WaitGroup

	ended    atomic.Bool  // the CLI is reaped and every process of the run gone
	cutAt    atomic.Bool  // the CLI has exited: stdout ends with what the pipe holds now
	vet      vetter       // reader only
	lastRead atomic.Int64 // ns since start of the last stdout read
	sending  atomic.Bool  // the reader is blocked handing an event over

	mu         sync.Mutex
	stopReason error

	// Written by their goroutines, read after wg.Wait.
	exit       Exit
	out        lineStats
	errBuf     []byte
	errTrunc   bool
	stdinErr   error
	strays     int
	strayPids  map[int]bool // supervisor only
	reason     error
	waitResult *waitResult
}

type waitResult struct {
	exit Exit
	err  error
}

// ID is the run's marker value (RunMarkerVar).
func (r *Run) ID() string { return r.id }

// Pid is the CLI's process id.
func (r *Run) Pid() int { return r.pid }

// Events delivers each stdout line parsed by ParseLine, in order, from one
// reader goroutine: one parse per line, no copy of the line. Each Event is
// the receiver's own (it shares no memory with the reader's buffers). Lines
// that do not parse, or are longer than MaxLine, are skipped and counted in
// Exit. The channel is closed when stdout ends (the CLI and everything it
// started are gone). Once Wait is called, events not yet received are
// dropped. In Text mode nothing is delivered.
func (r *Run) Events() <-chan Event { return r.events }

// Start starts the CLI. It fails, without starting anything, if the
// executable is missing (ErrNotFound) or not executable (ErrNotExecutable),
// or if a directory cannot be created.
func Start(ctx context.Context, o Options) (*Run, error) {
	if err := platformCheck(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if o.MaxLine <= 0 {
		o.MaxLine = DefaultMaxLine
	}
	if o.StderrLimit <= 0 {
		o.StderrLimit = DefaultStderrLimit
	}
	if o.KillGrace <= 0 {
		o.KillGrace = DefaultKillGrace
	}
	path, err := resolve(o.Path, o.Env)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{o.Dir, o.ConfigDir} {
		if d != "" {
			if err := os.MkdirAll(d, 0o700); err != nil {
				return nil, fmt.Errorf("claude: %w", err)
			}
		}
	}

	var idb [16]byte
	_, _ = rand.Read(idb[:])
	r := &Run{
		opts:   o,
		id:     hex.EncodeToString(idb[:]),
		events: make(chan Event, 64),
		exited: make(chan struct{}),
		stopCh: make(chan struct{}),
		waitCh: make(chan struct{}),
	}
	r.marker = []byte(RunMarkerVar + "=" + r.id)

	env := make([]string, 0, len(o.Env)+1)
	for _, kv := range o.Env {
		if !strings.HasPrefix(kv, RunMarkerVar+"=") {
			env = append(env, kv)
		}
	}
	env = append(env, string(r.marker))

	cmd := &exec.Cmd{
		Path:        path,
		Args:        append([]string{o.Path}, o.Args()...),
		Env:         env,
		Dir:         o.Dir,
		SysProcAttr: sysProcAttr(o.Credential),
	}

	var closeAfter []*os.File // the child's ends
	fail := func(err error) (*Run, error) {
		for _, f := range closeAfter {
			f.Close()
		}
		for _, f := range []*os.File{r.stdout, r.stderr, r.stdin} {
			if f != nil {
				f.Close()
			}
		}
		return nil, err
	}
	var w *os.File
	if r.stdout, w, err = os.Pipe(); err != nil {
		return fail(fmt.Errorf("claude: %w", err))
	}
	closeAfter = append(closeAfter, w)
	cmd.Stdout = w
	if r.stderr, w, err = os.Pipe(); err != nil {
		return fail(fmt.Errorf("claude: %w", err))
	}
	closeAfter = append(closeAfter, w)
	cmd.Stderr = w
	if o.Prompt != "" {
		var rd *os.File
		if rd, r.stdin, err = os.Pipe(); err != nil {
			return fail(fmt.Errorf("claude: %w", err))
		}
		closeAfter = append(closeAfter, rd)
		cmd.Stdin = rd
	}

	r.start = time.Now()
	if err := cmd.Start(); err != nil {
		if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.ENOEXEC) {
			return fail(fmt.Errorf("claude CLI at %s: %w: %v", o.Path, ErrNotExecutable, err))
		}
		return fail(fmt.Errorf("claude CLI at %s could not be started: %w", o.Path, err))
	}
	for _, f := range closeAfter {
		f.Close()
	}
	r.cmd = cmd
	r.pid = cmd.Process.Pid
	registerCLI(r.pid, true)

	n := 4
	if r.stdin != nil {
		n++
	}
	r.wg.Add(n)
	go r.readStdout()
	go r.readStderr()
	go r.waitExit()
	if r.stdin != nil {
		go r.writePrompt()
	}
	go r.supervise(ctx)
	return r, nil
}

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
	pathVar := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathVar = v
		}
	}
	var firstErr error
	for _, dir := range filepath.SplitList(pathVar) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, name)
		err := checkExecutable(p, name)
		if err == nil {
			return p, nil
		}
		if firstErr == nil && errors.Is(err, ErrNotExecutable) {
			firstErr = err
		}
	}
	if firstErr != nil {
		return "", firstErr
	}
	return "", fmt.Errorf("%w: %q is not in the run's PATH", ErrNotFound, name)
}

func checkExecutable(p, shown string) error {
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w at %s", ErrNotFound, shown)
		}
		return fmt.Errorf("claude CLI at %s: %w", shown, err)
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("claude CLI at %s: %w", shown, ErrNotExecutable)
	}
	return nil
}

// Stop stops the run: SIGTERM to the CLI's process group and to every
// process of the run, SIGKILL after KillGrace, until all are gone. Exit.Reason
// becomes reason (ErrCancelled if nil), unless the run already ended or was
// already stopped. It does not wait: call Wait.
func (r *Run) Stop(reason error) {
	if reason == nil {
		reason = ErrCancelled
	}
	r.mu.Lock()
	if r.stopReason == nil {
		r.stopReason = reason
	}
	r.mu.Unlock()
	r.stopOnce.Do(func() { close(r.stopCh) })
}

// Wait waits until the CLI and every process it started are gone, and every
// goroutine of the run has ended. It returns the Exit and an error that is
// nil only if the CLI exited with code 0 by itself: Reason if the run was
// stopped, otherwise an error naming the exit code or signal. Events not yet
// received are dropped.
func (r *Run) Wait() (Exit, error) {
	r.waitOnce.Do(func() {
		close(r.waitCh)
		r.wg.Wait()
		e := r.exit
		e.Reason = r.reason
		e.Stderr = string(r.errBuf)
		e.StderrTruncated = r.errTrunc
		e.BadLines, e.HugeLines, e.BadSample = r.out.bad, r.out.huge, r.out.badSample
		e.Tampered, e.TamperReason = r.out.tampered, r.out.tamperSample
		e.Output = string(r.out.text)
		e.StdinErr = r.stdinErr
		e.Strays = r.strays
		var err error
		switch {
		case e.Reason != nil:
			err = e.Reason
		case e.Signal != 0:
			err = fmt.Errorf("claude CLI killed by signal %v", e.Signal)
		case e.Code != 0:
			err = fmt.Errorf("claude CLI exited with code %d", e.Code)
		}
		r.waitResult = &waitResult{e, err}
	})
	return r.waitResult.exit, r.waitResult.err
}

// waitExit waits for the CLI to exit, leaving it unreaped.
func (r *Run) waitExit() {
	defer r.wg.Done()
	if err := waitExited(r.pid); err != nil {
		// Should not happen; fall back to polling the process.
		for syscall.Kill(r.pid, 0) == nil {
			if p, ok := readStat(r.pid, new([]byte)); ok && p.state == 'Z' {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// Wake the stdout reader so it measures what the CLI left in the pipe.
	r.cutAt.Store(true)
	_ = r.stdout.SetReadDeadline(time.Now())
	close(r.exited)
}

// writePrompt writes the prompt to stdin and closes it.
func (r *Run) writePrompt() {
	defer r.wg.Done()
	_, err := r.stdin.WriteString(r.opts.Prompt)
	if cerr := r.stdin.Close(); err == nil && !errors.Is(cerr, os.ErrClosed) {
		err = cerr
	}
	if err != nil && !errors.Is(err, os.ErrClosed) {
		r.stdinErr = fmt.Errorf("claude: writing the prompt: %w", err)
	} else if errors.Is(err, os.ErrClosed) {
		r.stdinErr = errors.New("claude: writing the prompt: the run ended first")
	}
}

func (r *Run) sinceStart() int64 { return int64(time.Since(r.start)) }

// supervise enforces the deadlines and Stop, then, once the CLI has exited,
// kills whatever the run left behind and reaps the CLI.
func (r *Run) supervise(ctx context.Context) {
	defer r.wg.Done()

	var total, idle <-chan time.Time
	if r.opts.Timeout > 0 {
		t := time.NewTimer(r.opts.Timeout)
		defer t.Stop()
		total = t.C
	}
	var idleT *time.Timer
	if r.opts.IdleTimeout > 0 && r.opts.Mode != Text {
		idleT = time.NewTimer(r.opts.IdleTimeout)
		defer idleT.Stop()
		idle = idleT.C
	}

	var reason error
loop:
	for {
		select {
		case <-r.exited:
			break loop
		case <-ctx.Done():
			reason = ctxReason(ctx)
		case <-total:
			reason = ErrTimeout
		case <-r.stopCh:
			r.mu.Lock()
			reason = r.stopReason
			r.mu.Unlock()
		case <-idle:
			quiet := time.Duration(r.sinceStart() - r.lastRead.Load())
			if r.sending.Load() {
				quiet = 0 // the consumer is slow, not the CLI
			}
			if quiet < r.opts.IdleTimeout {
				idleT.Reset(r.opts.IdleTimeout - quiet)
				continue
			}
			reason = ErrIdle
		}
		select {
		case <-r.exited: // it ended by itself meanwhile
		default:
			r.reason = reason
		}
		break loop
	}

	var graceEnd time.Time
	if r.reason != nil {
		graceEnd = time.Now().Add(r.opts.KillGrace)
		signalProcs(r.pid, r.scan(), syscall.SIGTERM)
		t := time.NewTimer(r.opts.KillGrace)
		select {
		case <-r.exited:
		case <-t.C:
			signalProcs(r.pid, r.scan(), syscall.SIGKILL)
			<-r.exited
		}
		t.Stop()
	}
	<-r.exited

	// The CLI has exited; its zombie still holds the process group id.
	// Give the rest of the run what is left of the grace period, then kill.
	ps := alive(r.scan())
	for len(ps) > 0 && time.Now().Before(graceEnd) {
		time.Sleep(20 * time.Millisecond)
		ps = alive(r.scan())
	}
	for i := 0; len(ps) > 0 && i < 500; i++ {
		signalProcs(r.pid, ps, syscall.SIGKILL)
		time.Sleep(time.Duration(min(i+1, 20)) * time.Millisecond)
		ps = alive(r.scan())
	}
	reapOrphans()
	r.strays = len(r.strayPids)

	_ = r.cmd.Wait()
	registerCLI(r.pid, false)
	if st := r.cmd.ProcessState; st != nil {
		r.exit.Code = st.ExitCode()
		if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.exit.Signal = ws.Signal()
		}
	}
	r.exit.Duration = time.Since(r.start)

	// Everything that held the pipes is dead, so the readers are about to
	// see EOF; in case something unknown still holds them, stop reading once
	// nothing is pending.
	if r.stdin != nil {
		r.stdin.Close()
	}
	r.ended.Store(true)
	deadline := time.Now().Add(500 * time.Millisecond)
	_ = r.stdout.SetReadDeadline(deadline)
	_ = r.stderr.SetReadDeadline(deadline)
}

// scan lists the run's processes other than the CLI, and remembers them
// for the reaper.
func (r *Run) scan() []procInfo {
	ps := scanRun(r.marker, r.pid)
	rememberProcs(ps)
	for _, p := range ps {
		if p.state != 'Z' {
			if r.strayPids == nil {
				r.strayPids = map[int]bool{}
			}
			r.strayPids[p.pid] = true
		}
	}
	return ps
}

func ctxReason(ctx context.Context) error {
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, context.DeadlineExceeded):
		return ErrTimeout
	case cause == nil || cause == context.Canceled:
		return ErrCancelled
	default:
		return fmt.Errorf("%w: %w", ErrCancelled, cause)
	}
}
