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

// Parse parses the flags and refuses arguments left over; it returns the
// names of the flags given explicitly.
func Parse(fs *flag.FlagSet, args []string) (set map[string]bool, err error) {
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set, nil
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
