// Command ovrlrd carries a Claude Code session from the user's terminal to
// the phone: it lists the sessions the CLI keeps on this machine, and
// uploads one, which becomes a conversation the app continues.
//
//	ovrlrd login --url https://api.example.com --api-key KEY --token -
//	ovrlrd sessions
//	ovrlrd import <sessionId> [--project NAME] [--title T]
//
// It reads files only from inside the CLI's projects folder
// (~/.claude/projects, or $CLAUDE_CONFIG_DIR/projects) and never through a
// link. Its settings and session token live in a file of the user's config
// folder (config.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	releaseOnDone(ctx, stop)
	sys := system{getenv: os.Getenv, homeDir: os.UserHomeDir, configDir: os.UserConfigDir, stdin: os.Stdin}
	os.Exit(run(ctx, os.Args[1:], sys, os.Stdout, os.Stderr))
}

// releaseOnDone gives the interrupt back to its default handling once ctx
// is done: the first Ctrl-C cancels what honours ctx, and a second one,
// or the first when nothing does, ends the process.
func releaseOnDone(ctx context.Context, stop func()) {
	go func() {
		<-ctx.Done()
		stop()
	}()
}

// system is what run takes from the machine: main passes the process's
// own, tests a home of their own.
type system struct {
	getenv    func(string) string
	homeDir   func() (string, error)
	configDir func() (string, error)
	stdin     io.Reader // where --token - is read from
	// alwaysUpload sends every transcript through a presigned upload: the
	// tests' way onto that path without a 5 MB file.
	alwaysUpload bool
}

const usage = `ovrlrd continues a Claude Code session from this machine on the phone.

Usage:
  ovrlrd login --token - [--url URL] [--api-key KEY]
  ovrlrd sessions [--all]
  ovrlrd import <sessionId> [--project NAME] [--title TITLE]

Every command also takes --url, --api-key and --token, which win over the
config file that login writes, and --claude-dir (default: $CLAUDE_CONFIG_DIR,
else ~/.claude): sessions are read from its projects folder only, and never
through a symbolic link. --token - reads the token from the standard input,
and $OVRLRD_TOKEN gives one too: either keeps it out of the process list.
`

// errUsage is a command line that could not be read; the flag package has
// already said why.
var errUsage = errors.New("usage")

// run runs one command line and returns the exit code: 0, 1 for an error,
// 2 for a command line it cannot read.
func run(ctx context.Context, args []string, sys system, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "sessions":
		err = sessionsCommand(ctx, args[1:], sys, stdout, stderr)
	case "import":
		err = importCommand(ctx, args[1:], sys, stdout, stderr)
	case "login":
		err = loginCommand(args[1:], sys, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "ovrlrd: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintln(stderr, "ovrlrd:", printable(err.Error()))
	return 1
}

// common are the flags every command takes; each wins over the config
// file.
type common struct {
	url, apiKey, token, claudeDir string
}

// flags returns the flag set of command name, with the common flags.
func flags(name string, c *common, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("ovrlrd "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.url, "url", "", "the API's address, e.g. https://api.example.com")
	fs.StringVar(&c.apiKey, "api-key", "", "the API key (X-API-Key)")
	fs.StringVar(&c.token, "token", "", "a session token, or - to read it from the standard input (default $OVRLRD_TOKEN)")
	fs.StringVar(&c.claudeDir, "claude-dir", "", "Claude Code's folder (default $CLAUDE_CONFIG_DIR, else ~/.claude)")
	return fs
}

// parse reads fs's flags wherever they stand among the positional
// arguments, which it returns: the flag package stops at the first of
// those, and `import <id> --project p` should read as typed. After "--"
// everything is positional.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
			return nil, err
		} else if err != nil {
			return nil, errUsage
		}
		rest := fs.Args()
		if terminated(fs, args[:len(args)-len(rest)]) {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional, args = append(positional, rest[0]), rest[1:]
	}
}

// terminated reports whether the flags parsed from args ended at a "--"
// of their own, rather than at one taken as a flag's value (--title --).
func terminated(fs *flag.FlagSet, args []string) bool {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return true
		}
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if strings.Contains(name, "=") {
			continue
		}
		if f := fs.Lookup(name); f != nil {
			if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !ok || !b.IsBoolFlag() {
				i++ // its value, whatever it reads
			}
		}
	}
	return false
}

// positionals checks the count of positional arguments.
func positionals(fs *flag.FlagSet, got []string, want int, what string) error {
	if len(got) != want {
		fmt.Fprintf(fs.Output(), "%s takes %s\n", fs.Name(), what)
		return errUsage
	}
	return nil
}
