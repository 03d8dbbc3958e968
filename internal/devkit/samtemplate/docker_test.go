package samtemplate_test

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd, args string
	stage     int // index of the FROM it belongs to
}

func dockerfile(t *testing.T) []instruction {
	t.Helper()
	f, err := os.Open("../../../Dockerfile")
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
	readJSON(t, "../../../package.json", &pkg)
	readJSON(t, "../../../package-lock.json", &lock)
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
	b, err := os.ReadFile("../../../.dockerignore")
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
	root, err := filepath.Abs("../../..")
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
	cmd.Dir = "../../.."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cfn-lint: %v\n%s", err, out)
	}
}

// goToolchain is the Go release the Makefile pins (export GOTOOLCHAIN :=
// go<version>), the one place it is written.
func goToolchain(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^export GOTOOLCHAIN := go([0-9]+\.[0-9]+\.[0-9]+)$`).FindStringSubmatch(string(b))
	if m == nil {
		t.Fatal("the Makefile pins no exact Go release (export GOTOOLCHAIN := go<x.y.z>)")
	}
	return m[1]
}

// One Go toolchain: the image's bootstrap is built by the release the
// Makefile pins, in a stage that runs natively on the build machine, and
// the CLI stage runs a Node.js LTS release.
func TestImageToolchains(t *testing.T) {
	want := goToolchain(t)
	ins := dockerfile(t)
	args := map[string]string{} // ARGs before the first FROM
	var goStage, nodeFrom string
	for _, in := range ins {
		if in.cmd == "ARG" && in.stage < 0 {
			k, v, _ := strings.Cut(in.args, "=")
			args[k] = v
		}
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			goStage = ins[slices.IndexFunc(ins, func(i instruction) bool { return i.cmd == "FROM" && i.stage == in.stage })].args
		}
		if f := strings.Fields(in.args); in.cmd == "FROM" && len(f) > 1 && strings.HasPrefix(f[1], "node:") {
			nodeFrom = f[1]
		}
	}
	if args["GO_VERSION"] != want {
		t.Errorf("Dockerfile ARG GO_VERSION=%q, the Makefile's GOTOOLCHAIN is go%s", args["GO_VERSION"], want)
	}
	var platform, image string
	for _, f := range strings.Fields(goStage) {
		if p, ok := strings.CutPrefix(f, "--platform="); ok {
			platform = p
		} else if !strings.HasPrefix(f, "--") && image == "" {
			image = f
		}
	}
	// Without BuildKit (no BUILDPLATFORM) the stage may fall back to the
	// image's own platform only.
	if !slices.Contains([]string{"$BUILDPLATFORM", "${BUILDPLATFORM}", "${BUILDPLATFORM:-linux/arm64}"}, platform) {
		t.Errorf("Go stage FROM %q: want --platform=$BUILDPLATFORM, so it compiles natively", goStage)
	}
	if !strings.HasPrefix(image, "golang:${GO_VERSION}-") {
		t.Errorf("Go stage FROM %q: want the golang image of ${GO_VERSION}", goStage)
	}
	m := regexp.MustCompile(`^node:([0-9]+)[-.]`).FindStringSubmatch(nodeFrom)
	if m == nil {
		t.Fatalf("CLI stage image %q: want node:<major>-...", nodeFrom)
	}
	if major, _ := strconv.Atoi(m[1]); major%2 != 0 || major < 22 {
		t.Errorf("CLI stage on Node.js %d: want an LTS (even) release, 22 or later", major)
	}
}

// workflowJobs reads the jobs of a GitHub workflow.
func workflowJobs(t *testing.T, name string) map[string]workflowJob {
	t.Helper()
	b, err := os.ReadFile("../../../.github/workflows/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var wf struct {
		Jobs map[string]workflowJob `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(b, &wf); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return wf.Jobs
}

type workflowJob struct {
	RunsOn string `yaml:"runs-on"`
	Steps  []struct {
		Uses string            `yaml:"uses"`
		Run  string            `yaml:"run"`
		With map[string]string `yaml:"with"`
	} `yaml:"steps"`
}

// CI and the deploy set up the Go release the Makefile pins (the go
// command would otherwise fetch it on every run), and the deploy builds
// the arm64 image on an arm64 runner, with no emulation.
func TestWorkflowsUseTheToolchain(t *testing.T) {
	want := goToolchain(t)
	for _, name := range []string{"ci.yml", "deploy.yml"} {
		setups := 0
		for id, job := range workflowJobs(t, name) {
			for _, s := range job.Steps {
				if strings.HasPrefix(s.Uses, "actions/setup-go@") {
					setups++
					if s.With["go-version"] != want {
						t.Errorf("%s %s: setup-go go-version %q, the Makefile's GOTOOLCHAIN is go%s", name, id, s.With["go-version"], want)
					}
				}
				if strings.HasPrefix(s.Uses, "docker/setup-qemu-action@") {
					t.Errorf("%s %s: sets up emulation; the arm64 image is built natively", name, id)
				}
				if strings.Contains(s.Run, "sam build") && !strings.HasSuffix(job.RunsOn, "-arm") {
					t.Errorf("%s %s: builds the arm64 image on %q, want an arm64 runner", name, id, job.RunsOn)
				}
			}
		}
		if setups == 0 {
			t.Errorf("%s: no actions/setup-go step", name)
		}
	}
}
