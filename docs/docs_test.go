// Package docs holds the project's documents; its test keeps them honest.
package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var testName = regexp.MustCompile("`((?:Test|Fuzz|Benchmark)[A-Za-z0-9_]+)`")

// Every row of the audit table has an explanation and at least one test,
// and every test it names exists.
func TestAuditTableNamesRealTests(t *testing.T) {
	doc, err := os.ReadFile("audit.md")
	if err != nil {
		t.Fatal(err)
	}
	defined := definedTests(t)
	findings, gaps, redTeam, faults, projects, imports, streams, approvals := 0, 0, 0, 0, 0, 0, 0, 0
	for _, line := range strings.Split(string(doc), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 6 {
			continue
		}
		id := strings.TrimSpace(cells[1])
		switch {
		case regexp.MustCompile(`^\d+$`).MatchString(id):
			findings++
		case regexp.MustCompile(`^G\d+$`).MatchString(id):
			gaps++
		case regexp.MustCompile(`^R\d+$`).MatchString(id):
			redTeam++
		case regexp.MustCompile(`^D\d+$`).MatchString(id):
			faults++
		case regexp.MustCompile(`^P\d+$`).MatchString(id):
			projects++
		case regexp.MustCompile(`^I\d+$`).MatchString(id):
			imports++
		case regexp.MustCompile(`^S\d+$`).MatchString(id):
			streams++
		case regexp.MustCompile(`^A\d+$`).MatchString(id):
			approvals++
		default:
			continue
		}
		if strings.TrimSpace(cells[3]) == "" {
			t.Errorf("row %s says nothing about how it is closed", id)
		}
		names := testName.FindAllStringSubmatch(cells[4], -1)
		if len(names) == 0 {
			t.Errorf("row %s names no test", id)
		}
		for _, n := range names {
			if !defined[n[1]] {
				t.Errorf("row %s names %s, which no test file defines", id, n[1])
			}
		}
	}
	if findings != 50 || gaps != 22 || redTeam != 10 || faults != 10 || projects != 7 || imports != 8 || streams != 7 || approvals != 8 {
		t.Errorf("%d finding, %d gap, %d red-team, %d fault, %d project, %d import, %d stream and %d approval rows, want 50, 22, 10, 10, 7, 8, 7 and 8",
			findings, gaps, redTeam, faults, projects, imports, streams, approvals)
	}
}

func definedTests(t *testing.T) map[string]bool {
	t.Helper()
	def := regexp.MustCompile(`(?m)^func ((?:Test|Fuzz|Benchmark)[A-Za-z0-9_]+)\(`)
	out := map[string]bool{}
	err := filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && path != ".." {
			return filepath.SkipDir
		}
		if strings.HasSuffix(path, "_test.go") {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range def.FindAllStringSubmatch(string(b), -1) {
				out[m[1]] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Secrets and local data can never be committed by accident.
func TestGitignoreCoversSecretsAndData(t *testing.T) {
	b, err := os.ReadFile("../.gitignore")
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	for _, want := range []string{"*.db", "*.p8", "*.pem", "*.key", "debug.log", ".env*", "!.env.example", ".aws-sam/", "build/", "node_modules/", ".local/"} {
		if !lines[want] {
			t.Errorf(".gitignore lacks %q", want)
		}
	}
}
