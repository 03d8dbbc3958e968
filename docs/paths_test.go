package docs

import (
	"bytes"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// A clone of the repository alone has to build and pass its tests, so no
// file it holds may lean on what happens to lie beside or above it on the
// machine it was written on.
func TestNothingReachesOutsideTheRepository(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	machine := machinePaths(root)
	files := repoFiles(t, root)
	for _, name := range files {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
		if os.IsNotExist(err) {
			continue // deleted in the work tree, not yet in the index
		}
		if err != nil {
			t.Fatal(err)
		}
		if bytes.IndexByte(b[:min(len(b), 8000)], 0) >= 0 {
			continue // binary
		}
		for _, found := range outsideReferences(name, string(b), machine) {
			t.Error(found)
		}
	}
	if len(files) < 100 {
		t.Errorf("scanned only %d files; the listing is not the repository's", len(files))
	}
}

// The scan catches each way out: climbing above the root, the project's
// folder of schemas beside the repository, and this machine's own paths.
func TestOutsideReferencesAreFound(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	machine := machinePaths(root)
	up := func(n int) string { return strings.Repeat("../", n) }
	// Built in pieces, or this file would name the folder it looks for.
	folder := "shared"
	beside := folder + "/schemas"
	type scanCase struct {
		file, text string
		want       bool
	}
	cases := []scanCase{
		{"internal/pkg/x_test.go", `os.ReadFile("` + up(2) + `template.yaml")`, false},
		{"internal/pkg/x_test.go", `os.ReadFile("` + up(3) + `shared/x.json")`, true},
		{"internal/pkg/x_test.go", `filepath.Abs("` + up(2) + `..")`, true},
		{"internal/pkg/x_test.go", `cmd.Dir = "` + up(1) + `.."`, false},
		{"docs/x.md", "[readme](" + up(1) + "README.md)", false},
		{"docs/x.md", "see `" + up(2) + "elsewhere`", true},
		{"Makefile", "include " + up(1) + "common.mk", true},
		{".github/workflows/ci.yml", "cache-dependency-path: " + up(1) + "go.sum", true},
		{"README.md", "wait... and ....", false},
		{"internal/pkg/x.go", `filepath.Join(dir, "` + beside + `")`, true},
		{"internal/pkg/x.go", `filepath.Join(dir, "` + folder + `", "schemas")`, true},
		{"internal/pkg/x.go", `const tmp = "/tmp/ovrlrd/work/conv-1"`, false},
		{"internal/pkg/x.go", `const p = "` + filepath.ToSlash(filepath.Join(root, "template.yaml")) + `"`, true},
		{"internal/pkg/x.go", `const p = "x` + filepath.ToSlash(root) + `"`, false},
	}
	for _, home := range machine[1:] {
		cases = append(cases, scanCase{"README.md", "run " + home + "/bin/tool", true})
	}
	for _, c := range cases {
		got := len(outsideReferences(c.file, c.text, machine)) > 0
		if got != c.want {
			t.Errorf("%s: %q: found %v, want %v", c.file, c.text, got, c.want)
		}
	}
}

var (
	// A run of ../ (or a bare ..) that starts a path; its length is how far
	// it climbs from where it is resolved.
	climb = regexp.MustCompile(`(?:^|[^\w.\-/])((?:\.\./)*\.\.)(?:/|[^\w.\-]|$)`)
	// The project's schemas once sat in a folder beside the repository,
	// which a clone of the repository alone does not have.
	besideSchemas = regexp.MustCompile(`shared\W{1,4}schemas`)
)

// outsideReferences lists, as file:line: what, every place text (the
// contents of the repository file name) reaches outside the repository.
func outsideReferences(name, text string, machine []string) []string {
	var out []string
	depth := 0
	if dir := path.Dir(name); dir != "." && !strings.HasPrefix(name, ".github/") {
		// Workflows run from the root; everything else resolves from its own
		// folder (a package's tests run in it).
		depth = strings.Count(dir, "/") + 1
	}
	for i, line := range strings.Split(text, "\n") {
		at := func(what string) { out = append(out, name+":"+strconv.Itoa(i+1)+": "+what) }
		for _, m := range climb.FindAllStringSubmatch(line, -1) {
			if n := strings.Count(m[1], ".."); n > depth {
				at(m[1] + " climbs above the root: " + strconv.Itoa(n) + " up from a file at depth " + strconv.Itoa(depth))
			}
		}
		if besideSchemas.MatchString(line) {
			at("names the schemas folder beside the repository; the tests read their own copies in testdata")
		}
		for _, p := range machine {
			if pathStart(line, p) {
				at("names " + p + ", a path of the machine it was written on")
			}
		}
	}
	return out
}

// machinePaths are absolute paths that belong to this machine rather than
// the repository: the root itself, its parent (where sibling checkouts
// live) and the user's home. A parent or home that is the temporary
// folder or / is left out, since paths under those are everyone's.
func machinePaths(root string) []string {
	paths := []string{filepath.ToSlash(root)}
	common := func(p string) bool {
		return p == "" || p == "/" || p == filepath.ToSlash(filepath.Clean(os.TempDir()))
	}
	if parent := filepath.ToSlash(filepath.Dir(root)); !common(parent) {
		paths = append(paths, parent)
	}
	if home, err := os.UserHomeDir(); err == nil && !common(filepath.ToSlash(home)) {
		paths = append(paths, filepath.ToSlash(home))
	}
	return paths
}

// pathStart reports whether line holds p as the start of a path, not as
// the tail of a longer one.
func pathStart(line, p string) bool {
	for i := strings.Index(line, p); i >= 0; {
		before := i == 0 || !isPathByte(line[i-1])
		end := i + len(p)
		after := end == len(line) || line[end] == '/' || !isPathByte(line[end])
		if before && after {
			return true
		}
		next := strings.Index(line[i+1:], p)
		if next < 0 {
			return false
		}
		i += 1 + next
	}
	return false
}

func isPathByte(c byte) bool {
	return c == '/' || c == '.' || c == '-' || c == '_' || c == '~' ||
		'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// repoFiles lists what the repository holds or is about to: tracked files
// and new ones git does not ignore (ignored local data is the machine's).
func repoFiles(t *testing.T, root string) []string {
	t.Helper()
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git ls-files (the scan needs git and the repository's .git): %v", err)
	}
	var files []string
	for _, f := range strings.Split(string(out), "\x00") {
		if f != "" {
			files = append(files, f)
		}
	}
	return files
}
