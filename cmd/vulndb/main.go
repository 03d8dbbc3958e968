// Command vulndb builds a Go vulnerability database that govulncheck reads
// from disk (govulncheck -db file://DIR), from the OSV entries of the
// golang.org/x/vulndb module, so the scan needs no access to the database's
// website, only the Go module proxy that serves that module.
//
// It reads the output of `go mod download -json golang.org/x/vulndb@VERSION`
// on stdin (or takes -src, the module's folder, and -time), and writes DIR
// in the v1 layout govulncheck expects:
//
//	index/db.json       {"modified": "<RFC 3339>"}
//	index/modules.json  [{"path": "...", "vulns": [{"id", "modified", "fixed"}]}], by path, vulns by id
//	index/vulns.json    [{"id", "modified", "aliases"}], by id
//	ID/<id>.json        each OSV entry, byte for byte
//
// "fixed" is the fix no later fix or re-introduction supersedes, as the
// database's own indexer computes it; govulncheck skips an entry for a
// module version at or past it, so it must never be too low. The module's
// source entries carry no modification times (the published database takes
// them from its history), so an entry without one gets the snapshot's time:
// the module version's commit time.
//
// The new database replaces DIR only once it is complete.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

func main() {
	src := flag.String("src", "", "the golang.org/x/vulndb module's folder (default: the Dir of `go mod download -json` read on stdin)")
	at := flag.String("time", "", "the snapshot's time, RFC 3339 (default: the module version's time, from the download's .info)")
	out := flag.String("out", "build/vulndb", "the database folder to write")
	flag.Parse()
	if err := run(*src, *at, *out, os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "vulndb:", err)
		os.Exit(1)
	}
}

func run(src, at, out string, stdin io.Reader) error {
	if src == "" {
		var err error
		if src, at, err = fromDownload(stdin, at); err != nil {
			return err
		}
	}
	snapshot := time.Time{}
	if at != "" {
		t, err := time.Parse(time.RFC3339, at)
		if err != nil {
			return fmt.Errorf("snapshot time: %w", err)
		}
		snapshot = t.UTC()
	}
	entries, err := load(filepath.Join(src, "data", "osv"), snapshot)
	if err != nil {
		return err
	}
	if err := write(out, entries); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "vulndb: %d entries, %d modules, modified %s, in %s\n",
		len(entries), len(modules(entries)), latest(entries).Format(time.RFC3339), out)
	return nil
}

// fromDownload reads `go mod download -json` output: the module's folder,
// and its version's time unless at is set.
func fromDownload(r io.Reader, at string) (dir, when string, err error) {
	var d struct {
		Path, Version, Dir, Info, Error string
	}
	if err := json.NewDecoder(r).Decode(&d); err != nil {
		return "", "", fmt.Errorf("reading `go mod download -json` output on stdin: %w", err)
	}
	if d.Error != "" {
		return "", "", fmt.Errorf("go mod download %s@%s: %s", d.Path, d.Version, d.Error)
	}
	if d.Dir == "" {
		return "", "", errors.New("the download names no module folder (Dir)")
	}
	if at == "" && d.Info != "" {
		b, err := os.ReadFile(d.Info)
		if err != nil {
			return "", "", err
		}
		var info struct{ Time string }
		if err := json.Unmarshal(b, &info); err != nil {
			return "", "", fmt.Errorf("%s: %w", d.Info, err)
		}
		at = info.Time
	}
	return d.Dir, at, nil
}

// entry is what the index needs of an OSV entry, and its bytes.
type entry struct {
	ID       string   `json:"id"`
	Modified string   `json:"modified"`
	Aliases  []string `json:"aliases"`
	Affected []struct {
		Package struct {
			Name string `json:"name"` // the module path
		} `json:"package"`
		Ranges []osvRange `json:"ranges"`
	} `json:"affected"`

	modified time.Time
	raw      []byte
}

type osvRange struct {
	Type   string `json:"type"`
	Events []struct {
		Introduced string `json:"introduced"`
		Fixed      string `json:"fixed"`
	} `json:"events"`
}

// validID is what an id may be: it names a file.
var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// load reads every <id>.json of dir, sorted by id.
func load(dir string, snapshot time.Time) ([]*entry, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no OSV entries in %s", dir)
	}
	var entries []*entry
	seen := map[string]bool{}
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		e := &entry{raw: b}
		if err := json.Unmarshal(b, e); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		switch {
		case !validID.MatchString(e.ID):
			return nil, fmt.Errorf("%s: invalid id %q", name, e.ID)
		case filepath.Base(name) != e.ID+".json":
			return nil, fmt.Errorf("%s holds %s", name, e.ID)
		case seen[e.ID]:
			return nil, fmt.Errorf("%s appears twice", e.ID)
		}
		seen[e.ID] = true
		if e.Modified != "" {
			if e.modified, err = time.Parse(time.RFC3339, e.Modified); err != nil {
				return nil, fmt.Errorf("%s: modified: %w", name, err)
			}
			e.modified = e.modified.UTC()
		}
		if e.modified.IsZero() {
			e.modified = snapshot
		}
		for _, a := range e.Affected {
			if a.Package.Name == "" {
				return nil, fmt.Errorf("%s: an affected package without a name", name)
			}
		}
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].ID < entries[j].ID })
	return entries, nil
}

type moduleVuln struct {
	ID       string `json:"id"`
	Modified string `json:"modified"`
	Fixed    string `json:"fixed,omitempty"`
}

type module struct {
	Path  string       `json:"path"`
	Vulns []moduleVuln `json:"vulns"`
}

// modules is the modules index: every affected module, by path, its
// vulnerabilities by id (entries are sorted by id).
func modules(entries []*entry) []module {
	byPath := map[string]*module{}
	for _, e := range entries {
		for _, a := range e.Affected {
			m := byPath[a.Package.Name]
			if m == nil {
				m = &module{Path: a.Package.Name, Vulns: []moduleVuln{}}
				byPath[a.Package.Name] = m
			}
			m.Vulns = append(m.Vulns, moduleVuln{ID: e.ID, Modified: stamp(e.modified), Fixed: latestFix(a.Ranges)})
		}
	}
	out := make([]module, 0, len(byPath))
	for _, m := range byPath {
		sort.SliceStable(m.Vulns, func(i, j int) bool { return m.Vulns[i].ID < m.Vulns[j].ID })
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// latestFix is the latest fixed version of the SEMVER ranges, unless the
// vulnerability is introduced again after it: then "" (no fix is known to
// cover every later version).
func latestFix(ranges []osvRange) string {
	fixed := ""
	for _, r := range ranges {
		if r.Type != "SEMVER" {
			continue
		}
		for _, ev := range r.Events {
			if ev.Fixed != "" && compareSemver(fixed, ev.Fixed) < 0 {
				fixed = ev.Fixed
			}
		}
		for _, ev := range r.Events {
			if ev.Introduced != "" && ev.Introduced != "0" && compareSemver(fixed, ev.Introduced) < 0 {
				fixed = ""
				break
			}
		}
	}
	return fixed
}

func latest(entries []*entry) time.Time {
	var t time.Time
	for _, e := range entries {
		if e.modified.After(t) {
			t = e.modified
		}
	}
	return t
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// write writes the database next to out, then puts it in out's place.
func write(out string, entries []*entry) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(out), "."+filepath.Base(out)+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	type vuln struct {
		ID       string   `json:"id"`
		Modified string   `json:"modified"`
		Aliases  []string `json:"aliases,omitempty"`
	}
	vulns := make([]vuln, 0, len(entries))
	for _, e := range entries {
		vulns = append(vulns, vuln{ID: e.ID, Modified: stamp(e.modified), Aliases: e.Aliases})
	}
	files := map[string]any{
		"index/db.json":      map[string]string{"modified": stamp(latest(entries))},
		"index/modules.json": modules(entries),
		"index/vulns.json":   vulns,
	}
	for name, v := range files {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if err := writeFile(filepath.Join(tmp, name), b); err != nil {
			return err
		}
	}
	for _, e := range entries {
		if err := writeFile(filepath.Join(tmp, "ID", e.ID+".json"), bytes.TrimSpace(e.raw)); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

func writeFile(name string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	return os.WriteFile(name, b, 0o644)
}

// compareSemver orders two versions as golang.org/x/mod/semver.Compare
// orders them with a "v" prefix added (the database writes versions
// without it): -1, 0 or +1. An invalid version (such as "") sorts before
// every valid one; build metadata is ignored.
func compareSemver(a, b string) int {
	pa, okA := parseSemver(a)
	pb, okB := parseSemver(b)
	switch {
	case !okA && !okB:
		return 0
	case !okA:
		return -1
	case !okB:
		return 1
	}
	for i := range 3 {
		if c := compareNumber(pa.nums[i], pb.nums[i]); c != 0 {
			return c
		}
	}
	return comparePrerelease(pa.pre, pb.pre)
}

type semver struct {
	nums [3]string // major, minor, patch: digits without leading zeros
	pre  string    // without its '-'
}

// parseSemver parses MAJOR[.MINOR[.PATCH[-PRERELEASE][+BUILD]]], after an
// optional "v" or "go" (as govulncheck reads them); a missing minor or
// patch is 0.
func parseSemver(v string) (semver, bool) {
	var p semver
	v = strings.TrimPrefix(strings.TrimPrefix(v, "v"), "go")
	p.nums = [3]string{"0", "0", "0"}
	for i := range 3 {
		n := 0
		for n < len(v) && '0' <= v[n] && v[n] <= '9' {
			n++
		}
		if n == 0 || (n > 1 && v[0] == '0') {
			return p, false
		}
		p.nums[i], v = v[:n], v[n:]
		if v == "" {
			return p, true
		}
		if i < 2 {
			if v[0] != '.' {
				return p, false
			}
			v = v[1:]
		}
	}
	if rest, ok := strings.CutPrefix(v, "-"); ok {
		pre, _, _ := strings.Cut(rest, "+")
		if !validIdents(pre, true) {
			return p, false
		}
		p.pre, v = pre, strings.TrimPrefix(rest, pre)
	}
	if rest, ok := strings.CutPrefix(v, "+"); ok {
		if !validIdents(rest, false) {
			return p, false
		}
		v = ""
	}
	return p, v == ""
}

// validIdents checks dot-separated identifiers of [0-9A-Za-z-]; in a
// prerelease, numeric ones have no leading zeros.
func validIdents(s string, pre bool) bool {
	for _, id := range strings.Split(s, ".") {
		if id == "" {
			return false
		}
		for _, c := range id {
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-') {
				return false
			}
		}
		if pre && isNumber(id) && len(id) > 1 && id[0] == '0' {
			return false
		}
	}
	return true
}

func isNumber(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// compareNumber compares decimal numbers without leading zeros.
func compareNumber(a, b string) int {
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// comparePrerelease follows SemVer: no prerelease ranks above any;
// identifiers compare left to right, numbers numerically and below
// alphanumerics, which compare in ASCII order; a prefix ranks below.
func comparePrerelease(a, b string) int {
	switch {
	case a == b:
		return 0
	case a == "":
		return 1
	case b == "":
		return -1
	}
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		x, y := as[i], bs[i]
		if x == y {
			continue
		}
		nx, ny := isNumber(x), isNumber(y)
		switch {
		case nx && ny:
			return compareNumber(x, y)
		case nx:
			return -1
		case ny:
			return 1
		}
		return strings.Compare(x, y)
	}
	switch {
	case len(as) < len(bs):
		return -1
	case len(as) > len(bs):
		return 1
	}
	return 0
}
