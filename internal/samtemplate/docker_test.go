package samtemplate_test

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd, args string
	stage     int // index of the FROM it belongs to
}

func dockerfile(t *testing.T) []instruction {
	t.Helper()
	f, err := os.Open("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	stage := -1
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if more, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(more + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		cur.Reset()
		cmd = strings.ToUpper(cmd)
		if cmd == "FROM" {
			stage++
		}
		out = append(out, instruction{cmd, strings.Join(strings.Fields(args), " "), stage})
	}
	return out
}

// The image: the bootstrap built as Lambda needs it, the CLI at the pinned
// version for arm64 at the path CLAUDE_PATH names, Lambda's base image, an
// unprivileged user.
func TestDockerfile(t *testing.T) {
	ins := dockerfile(t)
	last := ins[len(ins)-1].stage
	var final []instruction
	var build, npm string
	copies := map[string]string{} // destination -> source, final stage
	for _, in := range ins {
		if in.stage == last {
			final = append(final, in)
			if in.cmd == "COPY" {
				f := strings.Fields(in.args)
				copies[f[len(f)-1]] = f[len(f)-2]
			}
		}
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			build = in.args
		}
		if in.cmd == "RUN" && strings.Contains(in.args, "npm ci") {
			npm = in.args
		}
	}
	if final[0].args != "--platform=linux/arm64 public.ecr.aws/lambda/provided:al2023" {
		t.Errorf("final stage FROM %q, want Lambda's provided:al2023 for arm64", final[0].args)
	}
	for _, want := range []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64", "-tags lambda.norpc", "./functions/stream"} {
		if !strings.Contains(build, want) {
			t.Errorf("go build %q lacks %s", build, want)
		}
	}
	if !strings.Contains(npm, "--omit=dev") {
		t.Errorf("npm ci %q: dev dependencies are installed", npm)
	}
	env := dockerEnv(t)
	var user, entry string
	for _, in := range final {
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			var argv []string
			if err := json.Unmarshal([]byte(in.args), &argv); err != nil || len(argv) != 1 {
				t.Fatalf("ENTRYPOINT %s: want the bootstrap alone, in exec form", in.args)
			}
			entry = argv[0]
		}
	}
	if user == "" || strings.HasPrefix(user, "0") || strings.HasPrefix(user, "root") {
		t.Errorf("USER %q: the function must not run as root", user)
	}
	if src := copies[entry]; !strings.HasSuffix(src, "/bootstrap") {
		t.Errorf("ENTRYPOINT %s is not the copied bootstrap (%v)", entry, copies)
	}
	if src := copies[env["CLAUDE_PATH"]]; !strings.HasSuffix(src, "/claude") {
		t.Errorf("CLAUDE_PATH %s is not where the CLI is copied (%v)", env["CLAUDE_PATH"], copies)
	}

	// The platform package the image takes the binary from is the one the
	// lock file pins, at the version package.json pins.
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	var lock struct {
		Packages map[string]struct {
			Version string   `json:"version"`
			CPU     []string `json:"cpu"`
			OS      []string `json:"os"`
		} `json:"packages"`
	}
	readJSON(t, "../../package.json", &pkg)
	readJSON(t, "../../package-lock.json", &lock)
	want := pkg.Dependencies["@anthropic-ai/claude-code"]
	if !regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`).MatchString(want) {
		t.Fatalf("package.json pins @anthropic-ai/claude-code at %q: pin an exact version", want)
	}
	platform := regexp.MustCompile(`node_modules/@anthropic-ai/claude-code-linux-arm64/claude`).FindString(npm)
	if platform == "" {
		t.Fatalf("the image does not take the CLI from the linux-arm64 platform package: %s", npm)
	}
	for _, p := range []string{"node_modules/@anthropic-ai/claude-code", "node_modules/@anthropic-ai/claude-code-linux-arm64"} {
		e, ok := lock.Packages[p]
		if !ok || e.Version != want {
			t.Errorf("package-lock.json %s at %q, want %s", p, e.Version, want)
		}
	}
	if e := lock.Packages["node_modules/@anthropic-ai/claude-code-linux-arm64"]; strings.Join(e.CPU, ",") != "arm64" || strings.Join(e.OS, ",") != "linux" {
		t.Errorf("platform package is for %v/%v", e.OS, e.CPU)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// dockerignore reports whether the build context includes a path (relative
// to the repository, slash-separated), with .dockerignore's rules: the last
// matching pattern wins, '!' re-includes, a pattern matching a folder
// covers what is inside, '**' spans folders.
func dockerignore(t *testing.T) func(string) bool {
	t.Helper()
	b, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	type rule struct {
		re      *regexp.Regexp
		include bool
	}
	var rules []rule
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		include := strings.HasPrefix(line, "!")
		line = strings.Trim(strings.TrimPrefix(line, "!"), "/")
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(line); i++ {
			switch c := line[i]; {
			case strings.HasPrefix(line[i:], "**/"):
				re.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(line[i:], "**"):
				re.WriteString(".*")
				i++
			case c == '*':
				re.WriteString("[^/]*")
			case c == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(string(c)))
			}
		}
		re.WriteString("(/.*)?$")
		rules = append(rules, rule{regexp.MustCompile(re.String()), include})
	}
	return func(p string) bool {
		in := true
		for _, r := range rules {
			if r.re.MatchString(p) {
				in = r.include
			}
		}
		return in
	}
}

// The build context holds every file the image's build reads (the Go
// sources of the stream function's import graph, the module files, the npm
// lock) and none of the local clutter.
func TestDockerBuildContext(t *testing.T) {
	included := dockerignore(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var need []string
	for _, in := range dockerfile(t) {
		if in.cmd != "COPY" || strings.Contains(in.args, "--from=") {
			continue
		}
		f := strings.Fields(in.args)
		need = append(need, f[:len(f)-1]...)
	}
	cmd := exec.Command("go", "list", "-deps", "-f", `{{if not .Standard}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{end}}`, "./functions/stream")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, f := range strings.Fields(string(out)) {
		if rel, err := filepath.Rel(root, f); err == nil && !strings.HasPrefix(rel, "..") {
			need = append(need, filepath.ToSlash(rel))
		}
	}
	for _, p := range need {
		p = strings.TrimSuffix(p, "/")
		if !included(p) {
			t.Errorf("%s is needed by the image build but excluded by .dockerignore", p)
		}
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("%s is needed by the image build: %v", p, err)
		}
	}
	for _, p := range []string{"node_modules/x", ".local/secrets.env", "build/stream/bootstrap", ".git/config", "internal/app/app_test.go",
		"internal/claude/testdata/fakeclaude/main.go", "cmd/dev/main.go", ".env", "README.md", ".aws-sam/build/x"} {
		if included(p) {
			t.Errorf("%s is in the image's build context", p)
		}
	}
	t.Logf("%d paths the build needs are in the context", len(need))
}

// cfn-lint (with its SAM transform and CloudFormation's own resource
// specifications) where the machine has it; the schema tests above run
// everywhere.
func TestCfnLint(t *testing.T) {
	lint, err := exec.LookPath("cfn-lint")
	if err != nil {
		t.Skip("cfn-lint is not installed; the schema tests cover the template")
	}
	cmd := exec.Command(lint, "--format", "parseable", "template.yaml")
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cfn-lint: %v\n%s", err, out)
	}
}
