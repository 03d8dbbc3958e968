package harness

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ovrlrd/cloud/internal/claude"
)

// Run is a command's body: it runs with the arguments (without the
// command's name), reads the environment through getenv and returns the
// exit status.
type Run func(ctx context.Context, args []string, getenv func(string) string, out, errOut io.Writer) int

// Main runs run until it returns or the process is interrupted, and exits
// with its status.
func Main(run Run) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Flags are the settings every harness command takes.
type Flags struct {
	Quick    bool
	Timeout  time.Duration // the whole run: no turn outlives it
	LogLevel string
	CLIPath  string // the fake CLI; built through claudetest when empty
	Endpoint string // DynamoDB Local, from DYNAMODB_ENDPOINT; started here when empty
}

// Register adds -quick, which quick describes, -timeout, -log-level and -cli.
func (f *Flags) Register(fs *flag.FlagSet, quick string) {
	fs.BoolVar(&f.Quick, "quick", false, quick+" (flags given explicitly still win)")
	fs.DurationVar(&f.Timeout, "timeout", 170*time.Second, "the whole run")
	fs.StringVar(&f.LogLevel, "log-level", "warn", "the service's log level (logs go to stderr)")
	fs.StringVar(&f.CLIPath, "cli", "", "the fake CLI to run (default: built from internal/claude/testdata/fakeclaude)")
}

// Parse parses args, refusing arguments left over; with -quick it applies
// the quick setting of each flag not given explicitly.
func (f *Flags) Parse(fs *flag.FlagSet, args []string, getenv func(string) string, quick map[string]func()) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, apply := range quick {
		if f.Quick && !set[name] {
			apply()
		}
	}
	if f.Timeout <= 0 {
		return errors.New("-timeout must be positive")
	}
	f.Endpoint = getenv("DYNAMODB_ENDPOINT")
	return nil
}

// AtLeastOne fails for a count below 1, named by its flag.
func AtLeastOne(counts map[string]int) error {
	for name, v := range counts {
		if v < 1 {
			return fmt.Errorf("-%s must be at least 1", name)
		}
	}
	return nil
}

// Begin is the start of a command's run: with the error of parsing its
// flags, it reports it (exit status 2; 0 for -help); else it makes this
// process a child subreaper, as the stream function does, so that what a
// CLI leaves behind is re-parented here and reaped. ok is false when the
// command is to exit with the status returned.
func Begin(name string, parseErr error, errOut io.Writer) (code int, ok bool) {
	if parseErr != nil {
		if errors.Is(parseErr, flag.ErrHelp) {
			return 0, false
		}
		fmt.Fprintln(errOut, name+":", parseErr)
		return 2, false
	}
	if err := claude.BecomeSubreaper(); err != nil {
		fmt.Fprintln(errOut, name+":", err)
		return 1, false
	}
	return 0, true
}
