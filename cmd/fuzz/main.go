// Command fuzz runs every fuzz target of the module, one after another, each
// in its own package for -fuzztime, and prints one summary line per target:
//
//	make fuzz                   # 30s each
//	make fuzz FUZZTIME=5m       # longer
//
// It finds the targets by parsing the test files (every func FuzzXxx(*testing.F)
// in a *_test.go file that builds on this machine), and runs for each
//
//	go test -run '^$' -fuzz '^FuzzXxx$' -fuzztime <d> ./<package>
//
// From the output it reads the final "fuzz: elapsed: …, execs: N (…/sec),
// new interesting: M (total: T)" line and, on failure, where the failing
// input was written. A crash leaves its input under the package's
// testdata/fuzz/FuzzXxx/, as go test always does: fix the code, then commit
// the file, which from then on runs as a seed in every plain `go test`.
// New interesting inputs stay in the Go build cache's fuzz corpus.
//
// The exit status is 1 if a target found a crash, 2 if a target could not
// be fuzzed for another reason (a build failure, say) and none crashed, 0
// otherwise.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// target is one fuzz target: a func FuzzXxx(*testing.F) of a package.
type target struct {
	name string
	pkg  string // the package's directory, relative to the module root, as "./internal/api"
	file string // where it is declared, relative to the module root
	line int
}

// result is what fuzzing one target found.
type result struct {
	target
	execs      int64
	rate       int64 // executions per second, over the whole run
	interest   int   // new interesting inputs of this run
	total      int   // the corpus at the end, seeds included
	statusLine bool  // a final "execs:" line was found
	crash      bool
	crasher    string // the failing input, relative to the module root; "" for a seed
	failure    string // why it failed, when it did
	elapsed    time.Duration
	output     []byte
}

func run(ctx context.Context, args []string, out, errOut io.Writer) int {
	fset := flag.NewFlagSet("fuzz", flag.ContinueOnError)
	fset.SetOutput(errOut)
	fuzztime := fset.String("fuzztime", "30s", "how long to fuzz each target (a duration, or Nx for N executions)")
	root := fset.String("root", "", "the module's directory (default: found from the working directory)")
	goTool := fset.String("go", "go", "the go command")
	verbose := fset.Bool("v", false, "show go test's output as it runs")
	list := fset.Bool("list", false, "list the targets and exit")
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fset.NArg() > 0 {
		fmt.Fprintf(errOut, "fuzz: unexpected arguments %q\n", fset.Args())
		return 2
	}
	timeout, err := testTimeout(*fuzztime)
	if err != nil {
		fmt.Fprintln(errOut, "fuzz:", err)
		return 2
	}
	if *root == "" {
		if *root, err = moduleRoot(); err != nil {
			fmt.Fprintln(errOut, "fuzz:", err)
			return 2
		}
	}
	targets, err := discover(*root)
	if err != nil {
		fmt.Fprintln(errOut, "fuzz:", err)
		return 2
	}
	if len(targets) == 0 {
		fmt.Fprintln(errOut, "fuzz: no fuzz targets found")
		return 2
	}
	if *list {
		for _, t := range targets {
			fmt.Fprintf(out, "%s\t%s\t%s:%d\n", t.name, t.pkg, t.file, t.line)
		}
		return 0
	}

	fmt.Fprintf(out, "fuzzing %d targets for %s each, one after another\n", len(targets), *fuzztime)
	var results []result
	for i, t := range targets {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(out, "[%d/%d] %s in %s … ", i+1, len(targets), t.name, t.pkg)
		var live io.Writer
		if *verbose {
			fmt.Fprintln(out)
			live = out
		}
		r := fuzz(ctx, *goTool, *root, t, *fuzztime, timeout, live)
		results = append(results, r)
		fmt.Fprintln(out, r.verdict())
		if r.failure != "" && !*verbose {
			// What go test said, for the crash's stack or the build error.
			out.Write(indent(r.output))
		}
	}
	fmt.Fprintln(out)
	printSummary(out, results)
	if len(results) < len(targets) {
		fmt.Fprintf(out, "\ninterrupted: %d of %d targets not fuzzed\n", len(targets)-len(results), len(targets))
	}
	code := 0
	for _, r := range results {
		switch {
		case r.crash:
			code = 1
		case r.failure != "" && code == 0:
			code = 2
		}
	}
	if ctx.Err() != nil && code == 0 {
		code = 2
	}
	return code
}

// testTimeout is go test's -timeout for one target: the fuzzing time plus
// room for building, the seed corpus and minimizing a crasher. A count of
// executions ("1000x") gets go test's default.
func testTimeout(fuzztime string) (string, error) {
	if n, ok := strings.CutSuffix(fuzztime, "x"); ok {
		if v, err := strconv.ParseInt(n, 10, 64); err != nil || v < 1 {
			return "", fmt.Errorf("-fuzztime %q: want a duration or Nx", fuzztime)
		}
		return "", nil
	}
	d, err := time.ParseDuration(fuzztime)
	if err != nil || d <= 0 {
		return "", fmt.Errorf("-fuzztime %q: want a duration or Nx", fuzztime)
	}
	return (d + 10*time.Minute).String(), nil
}

// fuzz runs one target.
func fuzz(ctx context.Context, goTool, root string, t target, fuzztime, timeout string, live io.Writer) result {
	args := []string{"test", "-run", "^$", "-fuzz", "^" + t.name + "$", "-fuzztime", fuzztime}
	if timeout != "" {
		args = append(args, "-timeout", timeout)
	}
	args = append(args, t.pkg)
	cmd := exec.CommandContext(ctx, goTool, args...)
	cmd.Dir = root
	// go test stops fuzzing cleanly on an interrupt; a kill is the last
	// resort.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if live != nil {
		cmd.Stdout = io.MultiWriter(&buf, live)
		cmd.Stderr = cmd.Stdout
	}
	start := time.Now()
	err := cmd.Run()
	r := parse(t, buf.Bytes(), err)
	r.elapsed = time.Since(start)
	if r.crasher != "" {
		r.crasher = filepath.ToSlash(filepath.Join(strings.TrimPrefix(t.pkg, "./"), r.crasher))
	}
	return r
}

var (
	// fuzz: elapsed: 10s, execs: 123456 (12345/sec), new interesting: 3 (total: 15)
	statusRE = regexp.MustCompile(`(?m)^fuzz: elapsed: (\S+), execs: (\d+) \((\d+)/sec\), new interesting: (\d+) \(total: (\d+)\)`)
	// Failing input written to testdata/fuzz/FuzzXxx/0123abcd
	crasherRE = regexp.MustCompile(`(?m)Failing input written to (\S+)`)
)

// parse reads go test's output for one target; runErr is how it exited.
func parse(t target, output []byte, runErr error) result {
	r := result{target: t, output: output}
	if m := statusRE.FindAllSubmatch(output, -1); len(m) > 0 {
		last := m[len(m)-1]
		r.statusLine = true
		r.execs, _ = strconv.ParseInt(string(last[2]), 10, 64)
		r.interest, _ = strconv.Atoi(string(last[4]))
		r.total, _ = strconv.Atoi(string(last[5]))
		// The last line's rate is of its last interval (0/sec when it
		// follows the previous one at once): average over the run instead.
		if d, err := time.ParseDuration(string(last[1])); err == nil && d >= time.Second {
			r.rate = int64(float64(r.execs) / d.Seconds())
		} else {
			for _, l := range m {
				v, _ := strconv.ParseInt(string(l[3]), 10, 64)
				r.rate = max(r.rate, v)
			}
		}
	}
	if runErr == nil {
		return r
	}
	// A failure of the target itself (a new input, or a seed) is a crash;
	// anything else (the build, the set-up, an interrupt) is not.
	if regexp.MustCompile(`(?m)--- FAIL: ` + regexp.QuoteMeta(t.name) + `( |/|$)`).Match(output) {
		r.crash = true
		r.failure = "crash"
		if m := crasherRE.FindSubmatch(output); m != nil {
			r.crasher = string(m[1])
		} else {
			r.failure = "crash in the seed corpus"
		}
		return r
	}
	r.failure = lastLine(output)
	if r.failure == "" {
		r.failure = runErr.Error()
	}
	return r
}

// lastLine is the last line of go test's output that says something.
func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l != "" && l != "FAIL" && !strings.HasPrefix(l, "exit status") {
			return l
		}
	}
	return ""
}

func (r result) verdict() string {
	switch {
	case r.crash && r.crasher != "":
		return "CRASH, input written to " + r.crasher
	case r.crash:
		return "CRASH in the seed corpus (f.Add)"
	case r.failure != "":
		return "FAILED: " + r.failure
	}
	return fmt.Sprintf("ok, %d execs, %d new interesting (%.0fs)", r.execs, r.interest, r.elapsed.Seconds())
}

func printSummary(out io.Writer, results []result) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tpackage\texecutions\texecs/s\tnew interesting\tcorpus\tcrashes\tresult")
	fmt.Fprintln(tw, "------\t-------\t----------\t-------\t---------------\t------\t-------\t------")
	for _, r := range results {
		execs, rate, interest, total := "—", "—", "—", "—"
		if r.statusLine {
			execs, rate = strconv.FormatInt(r.execs, 10), strconv.FormatInt(r.rate, 10)
			interest, total = strconv.Itoa(r.interest), strconv.Itoa(r.total)
		}
		crashes, res := "0", "ok"
		switch {
		case r.crash:
			crashes, res = "1", "CRASH"
			if r.crasher != "" {
				res += ": " + r.crasher
			} else {
				res += " in a seed"
			}
		case r.failure != "":
			res = "FAILED: " + r.failure
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.name, r.pkg, execs, rate, interest, total, crashes, res)
	}
	tw.Flush()
	var crashed []result
	for _, r := range results {
		if r.crash {
			crashed = append(crashed, r)
		}
	}
	if len(crashed) == 0 {
		return
	}
	fmt.Fprintln(out, "\nCrashes: each failing input is in the package's testdata/fuzz/<target>/. Reproduce with")
	for _, r := range crashed {
		if r.crasher != "" {
			fmt.Fprintf(out, "  go test -run '^%s$/^%s$' %s\n", r.name, filepath.Base(r.crasher), r.pkg)
		} else {
			fmt.Fprintf(out, "  go test -run '^%s$' %s\n", r.name, r.pkg)
		}
	}
	fmt.Fprintln(out, "then fix the code and commit the input: it stays as a seed that every go test runs.")
}

func indent(b []byte) []byte {
	var out bytes.Buffer
	for line := range bytes.Lines(bytes.TrimRight(b, "\n")) {
		out.WriteString("    | ")
		out.Write(line)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

// moduleRoot finds the directory holding go.mod, from the working
// directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// discover finds every fuzz target of the module at root: in each package
// directory the go command would see (not testdata, not hidden or _
// directories, not node_modules, not a nested module), each test file that
// builds on this machine, each top-level func FuzzXxx(*testing.F). They come
// sorted by package, then in source order.
func discover(root string) ([]target, error) {
	var targets []target
	ctxt := build.Default
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root {
				if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "node_modules" {
					return filepath.SkipDir
				}
				if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !strings.HasSuffix(name, "_test.go") || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
			return nil
		}
		dir := filepath.Dir(path)
		if ok, err := ctxt.MatchFile(dir, name); err != nil || !ok {
			return err
		}
		found, err := fuzzFuncs(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, dir)
		if err != nil {
			return err
		}
		relFile, _ := filepath.Rel(root, path)
		for _, f := range found {
			targets = append(targets, target{name: f.name, pkg: "./" + filepath.ToSlash(rel),
				file: filepath.ToSlash(relFile), line: f.line})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(targets, func(a, b target) int {
		if c := strings.Compare(a.pkg, b.pkg); c != 0 {
			return c
		}
		if c := strings.Compare(a.file, b.file); c != 0 {
			return c
		}
		return a.line - b.line
	})
	// Two targets of one name in one package (say, in its internal and its
	// external test package) would not build; report rather than guess.
	for i := 1; i < len(targets); i++ {
		if targets[i].pkg == targets[i-1].pkg && targets[i].name == targets[i-1].name {
			return nil, fmt.Errorf("%s declared twice in %s", targets[i].name, targets[i].pkg)
		}
	}
	return targets, nil
}

type fuzzFunc struct {
	name string
	line int
}

// fuzzFuncs lists the fuzz targets a test file declares: top-level
// functions named Fuzz or FuzzXxx (Xxx not starting with a lower-case
// letter) taking one *testing.F and returning nothing.
func fuzzFuncs(path string) ([]fuzzFunc, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	testing := ""
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == "testing" {
			testing = "testing"
			if imp.Name != nil {
				testing = imp.Name.Name
			}
		}
	}
	if testing == "" || testing == "_" || testing == "." {
		return nil, nil
	}
	var out []fuzzFunc
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Recv != nil || fn.Type.TypeParams != nil || !isFuzzName(fn.Name.Name) {
			continue
		}
		if fn.Type.Results != nil && len(fn.Type.Results.List) > 0 {
			continue
		}
		params := fn.Type.Params.List
		if len(params) != 1 || len(params[0].Names) > 1 {
			continue
		}
		star, ok := params[0].Type.(*ast.StarExpr)
		if !ok {
			continue
		}
		sel, ok := star.X.(*ast.SelectorExpr)
		if !ok || sel.Sel.Name != "F" {
			continue
		}
		if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != testing {
			continue
		}
		out = append(out, fuzzFunc{name: fn.Name.Name, line: fset.Position(fn.Pos()).Line})
	}
	return out, nil
}

// isFuzzName is go test's rule: "Fuzz", or "Fuzz" and a rune that is not
// a lower-case letter.
func isFuzzName(name string) bool {
	rest, ok := strings.CutPrefix(name, "Fuzz")
	if !ok {
		return false
	}
	if rest == "" {
		return true
	}
	r, _ := utf8.DecodeRuneInString(rest)
	return !unicode.IsLower(r)
}
