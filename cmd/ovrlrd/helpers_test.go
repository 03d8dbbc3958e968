package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// desk is one user's machine: a home with Claude Code's folder, and a
// config folder of its own.
type desk struct {
	home, claude, config string
	// alwaysUpload is passed to run.
	alwaysUpload bool
	stdin        string            // the standard input of each run
	env          map[string]string // its environment
}

func newDesk(t *testing.T) *desk {
	t.Helper()
	home := t.TempDir()
	d := &desk{home: home, claude: filepath.Join(home, ".claude"), config: filepath.Join(home, "config")}
	if err := os.MkdirAll(filepath.Join(d.claude, "projects"), 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}

func (d *desk) system() system {
	return system{
		getenv:       func(k string) string { return d.env[k] },
		stdin:        strings.NewReader(d.stdin),
		homeDir:      func() (string, error) { return d.home, nil },
		configDir:    func() (string, error) { return d.config, nil },
		alwaysUpload: d.alwaysUpload,
	}
}

// result is one finished command line.
type result struct {
	code           int
	stdout, stderr string
}

// run runs a command line in process.
func (d *desk) run(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, d.system(), &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// place writes data as the transcript of session id under slug.
func (d *desk) place(t *testing.T, slug, id string, data []byte) string {
	t.Helper()
	path := filepath.Join(d.claude, "projects", slug, id+".jsonl")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// savedConfig is the desk's config file as saved.
func (d *desk) savedConfig(t *testing.T) configFile {
	t.Helper()
	c, err := loadConfig(filepath.Join(d.config, "ovrlrd", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Session ids of the synthetic transcripts.
const (
	sessionA = "0f8fad5b-d9cb-469f-a165-70867728950e"
	sessionB = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	sessionC = "16fd2706-8baf-433b-82eb-8c7fada847da"
)

// synthetic is a transcript of session id, run in cwd, shaped as the CLI
// writes one: the prompt, and an answer.
func synthetic(id, cwd, prompt, answer string) []byte {
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	entry := func(n int, typ string, content any) string {
		e := map[string]any{
			"parentUuid": nil, "isSidechain": false, "type": typ, "uuid": fmt.Sprintf("00000000-0000-4000-8000-%012d", n),
			"timestamp": at.Add(time.Duration(n) * time.Second).Format("2006-01-02T15:04:05.000Z"),
			"cwd":       cwd, "sessionId": id, "version": "2.1.197",
			"message": map[string]any{"role": typ, "content": content},
		}
		if n > 1 {
			e["parentUuid"] = fmt.Sprintf("00000000-0000-4000-8000-%012d", n-1)
		}
		b, _ := json.Marshal(e)
		return string(b)
	}
	return []byte(strings.Join([]string{
		entry(1, "user", prompt),
		entry(2, "assistant", []any{map[string]any{"type": "text", "text": answer}}),
	}, "\n") + "\n")
}
