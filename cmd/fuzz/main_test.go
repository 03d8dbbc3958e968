package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every fuzz target of the repository is found, in its package.
func TestDiscoverFindsTheRepositoryTargets(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	targets, err := discover(root)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, tg := range targets {
		got[tg.name] = tg.pkg
	}
	for name, pkg := range map[string]string{
		"FuzzDecodeBodies": "./internal/api", "FuzzParseLine": "./internal/claude",
		"FuzzParseLineMatchesRef": "./internal/claude", "FuzzDecode": "./internal/cursor",
		"FuzzTranslator": "./internal/relay", "FuzzWriter": "./internal/sse",
		"FuzzBearer": "./internal/token", "FuzzVerify": "./internal/token",
	} {
		if got[name] != pkg {
			t.Errorf("%s: found in %q, want %q (all: %v)", name, got[name], pkg, got)
		}
	}
}

// Only what go test fuzzes counts: go test's naming rule, one *testing.F
// (under whatever name testing is imported), top level, no results, and
// only in files that build here.
func TestDiscoverFollowsGoTestsRules(t *testing.T) {
	root := t.TempDir()
	write(t, root, "go.mod", "module example.com/m\n\ngo 1.26\n")
	write(t, root, "a/a_test.go", `package a

import tst "testing"

func Fuzz(f *tst.F)         {}
func FuzzOne(f *tst.F)      {}
func Fuzz_two(f *tst.F)     {}
func Fuzzy(f *tst.F)        {}
func FuzzT(t *tst.T)        {}
func FuzzRet(f *tst.F) bool { return false }
func FuzzTwo(f, g *tst.F)   {}

type x struct{}

func (x) FuzzMethod(f *tst.F) {}
`)
	write(t, root, "a/b_test.go", "//go:build never\n\npackage a\n\nimport \"testing\"\n\nfunc FuzzTagged(f *testing.F) {}\n")
	write(t, root, "a/testdata/c_test.go", "package a\n\nimport \"testing\"\n\nfunc FuzzData(f *testing.F) {}\n")
	write(t, root, "a/a.go", "package a\n\nimport \"testing\"\n\nfunc FuzzNotATest(f *testing.F) {}\n")
	write(t, root, "nested/go.mod", "module example.com/n\n")
	write(t, root, "nested/n_test.go", "package n\n\nimport \"testing\"\n\nfunc FuzzNested(f *testing.F) {}\n")
	write(t, root, "node_modules/p/p_test.go", "package p\n\nimport \"testing\"\n\nfunc FuzzNode(f *testing.F) {}\n")
	targets, err := discover(root)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tg := range targets {
		names = append(names, tg.pkg+" "+tg.name)
	}
	if got, want := strings.Join(names, ", "), "./a Fuzz, ./a FuzzOne, ./a Fuzz_two"; got != want {
		t.Errorf("found %s, want %s", got, want)
	}
}

func TestParseOutput(t *testing.T) {
	tg := target{name: "FuzzX", pkg: "./internal/x"}
	ok := parse(tg, []byte(`fuzz: elapsed: 0s, gathering baseline coverage: 0/12 completed
fuzz: elapsed: 0s, gathering baseline coverage: 12/12 completed, now fuzzing with 2 workers
fuzz: elapsed: 3s, execs: 120000 (40000/sec), new interesting: 2 (total: 14)
fuzz: elapsed: 10s, execs: 400000 (40000/sec), new interesting: 5 (total: 17)
fuzz: elapsed: 10s, execs: 400000 (0/sec), new interesting: 5 (total: 17)
PASS
ok  	example.com/x	10.2s
`), nil)
	if !ok.statusLine || ok.execs != 400000 || ok.rate != 40000 || ok.interest != 5 || ok.total != 17 || ok.crash || ok.failure != "" {
		t.Errorf("passing run: %+v", ok)
	}

	crash := parse(tg, []byte(`fuzz: elapsed: 0s, gathering baseline coverage: 1/1 completed, now fuzzing with 2 workers
fuzz: minimizing 36-byte failing input file
--- FAIL: FuzzX (0.03s)
    --- FAIL: FuzzX (0.00s)
        testing.go:1927: panic: boom
    Failing input written to testdata/fuzz/FuzzX/c2501043394e49f2
    To re-run:
    go test -run=FuzzX/c2501043394e49f2
FAIL
exit status 1
FAIL	example.com/x	0.036s
`), errors.New("exit status 1"))
	if !crash.crash || crash.crasher != "testdata/fuzz/FuzzX/c2501043394e49f2" {
		t.Errorf("crash: %+v", crash)
	}

	seed := parse(tg, []byte("--- FAIL: FuzzX (0.00s)\n    --- FAIL: FuzzX/seed#0 (0.00s)\n        x_test.go:9: no\nFAIL\n"), errors.New("exit status 1"))
	if !seed.crash || seed.crasher != "" {
		t.Errorf("seed failure: %+v", seed)
	}

	build := parse(tg, []byte("# example.com/x\n./x.go:3:1: syntax error\nFAIL\texample.com/x [build failed]\nFAIL\n"), errors.New("exit status 1"))
	if build.crash || build.failure != "FAIL\texample.com/x [build failed]" {
		t.Errorf("build failure: %+v", build)
	}
	// Another target whose name starts with this one's is not this one.
	other := parse(tg, []byte("--- FAIL: FuzzXY (0.00s)\nFAIL\n"), errors.New("exit status 1"))
	if other.crash {
		t.Errorf("FuzzXY's failure taken for FuzzX's: %+v", other)
	}
}

// The whole program on a small module: one target passes, one crashes;
// the crash is reported, its input kept, and the exit status is 1.
func TestRunReportsACrash(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and fuzzes a module")
	}
	root := t.TempDir()
	write(t, root, "go.mod", "module example.com/fz\n\ngo 1.26\n")
	write(t, root, "fz/fz_test.go", `package fz

import "testing"

func FuzzCrash(f *testing.F) {
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 2 {
			panic("boom")
		}
	})
}

func FuzzFine(f *testing.F) {
	f.Add("a")
	f.Fuzz(func(t *testing.T, s string) {})
}
`)
	var out, errOut strings.Builder
	code := run(context.Background(), []string{"-root", root, "-fuzztime", "2s"}, &out, &errOut)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out.String(), errOut.String())
	}
	crashers, _ := filepath.Glob(filepath.Join(root, "fz", "testdata", "fuzz", "FuzzCrash", "*"))
	if len(crashers) != 1 {
		t.Fatalf("crashers %v", crashers)
	}
	rel := "fz/testdata/fuzz/FuzzCrash/" + filepath.Base(crashers[0])
	var crashLine, fineLine string
	for l := range strings.Lines(out.String()) {
		switch {
		case strings.HasPrefix(l, "FuzzCrash "):
			crashLine = l
		case strings.HasPrefix(l, "FuzzFine "):
			fineLine = l
		}
	}
	if f := strings.Fields(crashLine); len(f) < 8 || f[6] != "1" || !strings.Contains(crashLine, "CRASH: "+rel) {
		t.Errorf("crash row %q\n%s", crashLine, out.String())
	}
	if f := strings.Fields(fineLine); len(f) != 8 || f[2] == "—" || f[2] == "0" || f[6] != "0" || f[7] != "ok" {
		t.Errorf("passing row %q\n%s", fineLine, out.String())
	}
}

func write(t *testing.T, root, name, content string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
