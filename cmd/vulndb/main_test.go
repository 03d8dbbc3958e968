package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCompareSemver(t *testing.T) {
	// Ascending groups of equal versions.
	groups := [][]string{
		{"", "bad", "1.2.3.4", "01.0.0", "1.02.0", "1-pre", "1.0-pre"}, // invalid: below any valid one
		{"0.0.0-0"},
		{"0.0.0-20230101000000-abcdef123456"},
		{"0.0.0"},
		{"0.1.0"},
		{"1.0.0-0.3.7"},
		{"1.0.0-alpha"},
		{"1.0.0-alpha.1"},
		{"1.0.0-alpha.beta"},
		{"1.0.0-beta"},
		{"1.0.0-beta.2"},
		{"1.0.0-beta.11"},
		{"1.0.0-rc.1"},
		{"1.0.0", "1.0.0+build.5", "v1.0.0", "1", "1.0"},
		{"1.2.3"},
		{"1.10.0"},
		{"1.21.13", "go1.21.13"},
		{"2.0.0"},
		{"10.0.0"},
	}
	for i, gi := range groups {
		for j, gj := range groups {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			for _, a := range gi {
				for _, b := range gj {
					if got := compareSemver(a, b); got != want {
						t.Errorf("compareSemver(%q, %q) = %d, want %d", a, b, got, want)
					}
				}
			}
		}
	}
	for _, bad := range []string{"1.0.0-", "1.0.0-01", "1.0.0-a..b", "1.0.0+", "1.0.0+a_b", "1.0.0-a_b", "1.0.0 ", "v"} {
		if _, ok := parseSemver(bad); ok {
			t.Errorf("%q parsed as valid", bad)
		}
	}
}

func TestLatestFix(t *testing.T) {
	r := func(typ string, evs ...string) osvRange {
		var o osvRange
		o.Type = typ
		for _, e := range evs {
			k, v, _ := strings.Cut(e, "=")
			ev := struct {
				Introduced string `json:"introduced"`
				Fixed      string `json:"fixed"`
			}{}
			if k == "i" {
				ev.Introduced = v
			} else {
				ev.Fixed = v
			}
			o.Events = append(o.Events, ev)
		}
		return o
	}
	cases := []struct {
		name   string
		ranges []osvRange
		want   string
	}{
		{"one fix", []osvRange{r("SEMVER", "i=0", "f=1.2.3")}, "1.2.3"},
		{"two branches", []osvRange{r("SEMVER", "i=0", "f=1.20.12", "i=1.21.0-0", "f=1.21.5")}, "1.21.5"},
		{"numeric order, not text", []osvRange{r("SEMVER", "i=0", "f=1.9.0", "i=1.10.0", "f=1.10.1")}, "1.10.1"},
		{"introduced again, never fixed", []osvRange{r("SEMVER", "i=0", "f=1.2.0", "i=1.5.0")}, ""},
		{"no fix", []osvRange{r("SEMVER", "i=0")}, ""},
		{"several ranges", []osvRange{r("SEMVER", "i=0", "f=0.3.0"), r("SEMVER", "i=0", "f=0.4.1")}, "0.4.1"},
		{"only SEMVER counts", []osvRange{r("ECOSYSTEM", "i=0", "f=9.9.9"), r("SEMVER", "i=0", "f=1.0.0")}, "1.0.0"},
		{"pseudo-versions", []osvRange{r("SEMVER", "i=0", "f=0.0.0-20260610131716-5dc8f53b70a3")}, "0.0.0-20260610131716-5dc8f53b70a3"},
	}
	for _, c := range cases {
		if got := latestFix(c.ranges); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

const osvA = `{
  "schema_version": "1.3.1",
  "id": "GO-2024-0002",
  "modified": "0001-01-01T00:00:00Z",
  "aliases": ["CVE-2024-1"],
  "details": "x",
  "affected": [
    {"package": {"name": "example.com/a", "ecosystem": "Go"},
     "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.2.3"}]}]},
    {"package": {"name": "stdlib", "ecosystem": "Go"},
     "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.21.5"}]}]}
  ]
}
`

const osvB = `{"id":"GO-2023-0001","modified":"2025-01-02T03:04:05Z","details":"y",
 "affected":[{"package":{"name":"example.com/a","ecosystem":"Go"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}`

func writeOSV(t *testing.T, files map[string]string) string {
	t.Helper()
	src := t.TempDir()
	dir := filepath.Join(src, "data", "osv")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return src
}

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBuild(t *testing.T) {
	src := writeOSV(t, map[string]string{"GO-2024-0002.json": osvA, "GO-2023-0001.json": osvB, "README.md": "not an entry"})
	out := filepath.Join(t.TempDir(), "vulndb")
	// What was there before is replaced.
	if err := os.MkdirAll(filepath.Join(out, "ID"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "ID", "GO-1999-0001.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(src, "2026-11-05T23:49:57Z", out, nil); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(out, "index", "db.json")); got != `{"modified":"2026-11-05T23:49:57Z"}` {
		t.Errorf("db.json %s", got)
	}
	want := `[{"path":"example.com/a","vulns":[` +
		`{"id":"GO-2023-0001","modified":"2025-01-02T03:04:05Z"},` +
		`{"id":"GO-2024-0002","modified":"2026-11-05T23:49:57Z","fixed":"1.2.3"}]},` +
		`{"path":"stdlib","vulns":[{"id":"GO-2024-0002","modified":"2026-11-05T23:49:57Z","fixed":"1.21.5"}]}]`
	if got := read(t, filepath.Join(out, "index", "modules.json")); got != want {
		t.Errorf("modules.json\n got %s\nwant %s", got, want)
	}
	if got := read(t, filepath.Join(out, "index", "vulns.json")); got != `[{"id":"GO-2023-0001","modified":"2025-01-02T03:04:05Z"},{"id":"GO-2024-0002","modified":"2026-11-05T23:49:57Z","aliases":["CVE-2024-1"]}]` {
		t.Errorf("vulns.json %s", got)
	}
	if got := read(t, filepath.Join(out, "ID", "GO-2024-0002.json")); got != strings.TrimSpace(osvA) {
		t.Errorf("the entry was changed:\n%s", got)
	}
	ids, _ := filepath.Glob(filepath.Join(out, "ID", "*"))
	if len(ids) != 2 {
		t.Errorf("ID/ holds %v", ids)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".vulndb-*")); len(left) != 0 {
		t.Errorf("temporary folders left: %v", left)
	}
}

func TestBuildRefuses(t *testing.T) {
	cases := map[string]map[string]string{
		"no entries":            {},
		"not JSON":              {"GO-2024-0001.json": "{"},
		"file names another id": {"GO-2024-0001.json": osvB},
		"id is a path":          {"x.json": `{"id":"../x","affected":[]}`},
		"bad time":              {"GO-2024-0001.json": `{"id":"GO-2024-0001","modified":"yesterday","affected":[]}`},
		"package unnamed":       {"GO-2024-0001.json": `{"id":"GO-2024-0001","affected":[{"package":{}}]}`},
	}
	for name, files := range cases {
		out := filepath.Join(t.TempDir(), "vulndb")
		if err := run(writeOSV(t, files), "2026-01-01T00:00:00Z", out, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("%s: wrote %s", name, out)
		}
	}
}

func TestFromDownload(t *testing.T) {
	info := filepath.Join(t.TempDir(), "v.info")
	if err := os.WriteFile(info, []byte(`{"Version":"v0.0.0-20261105234957-e22db6528018","Time":"2026-11-05T23:49:57Z"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	dl, _ := json.Marshal(map[string]string{"Path": "golang.org/x/vulndb", "Version": "v0", "Dir": "/mod/dir", "Info": info})
	dir, at, err := fromDownload(strings.NewReader(string(dl)), "")
	if err != nil || dir != "/mod/dir" || at != "2026-11-05T23:49:57Z" {
		t.Errorf("got %q %q %v", dir, at, err)
	}
	if _, at, _ := fromDownload(strings.NewReader(string(dl)), "2020-01-01T00:00:00Z"); at != "2020-01-01T00:00:00Z" {
		t.Errorf("-time was overridden: %q", at)
	}
	if _, _, err := fromDownload(strings.NewReader(`{"Path":"golang.org/x/vulndb","Version":"v9","Error":"not found"}`), ""); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("a failed download: %v", err)
	}
	if _, _, err := fromDownload(strings.NewReader(""), ""); err == nil {
		t.Error("empty input accepted")
	}
}
