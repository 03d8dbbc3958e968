//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("no FIFOs here: %v", err)
	}
}

// A FIFO where the projects folder should be is refused, not opened: the
// open would wait for a writer forever.
func TestProjectsFIFO(t *testing.T) {
	d := newDesk(t)
	projects := filepath.Join(d.claude, "projects")
	if err := os.Remove(projects); err != nil {
		t.Fatal(err)
	}
	mkfifo(t, projects)
	done := make(chan error, 1)
	go func() { _, err := openProjects(d.claude); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "is not a folder") {
			t.Errorf("opened: %v", err)
		}
	case <-time.After(10 * time.Second): // a guard: it returns at once, or never
		t.Error("opening a FIFO as the projects folder blocked")
		if w, err := os.OpenFile(projects, os.O_WRONLY, 0); err == nil {
			w.Close()
		}
	}
}

// A transcript is opened without blocking: a FIFO swapped in after the
// Lstat opens at once (and is then refused as another file).
func TestTranscriptOpenDoesNotBlock(t *testing.T) {
	d := newDesk(t)
	slug := filepath.Join(d.claude, "projects", "-srv")
	mkfifo(t, filepath.Join(slug, sessionA+".jsonl"))
	root, err := os.OpenRoot(slug)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	done := make(chan error, 1)
	go func() {
		f, err := root.OpenFile(sessionA+".jsonl", os.O_RDONLY|openFlags, 0)
		if err == nil {
			f.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(10 * time.Second): // a guard: it returns at once, or never
		t.Error("opening a FIFO blocked")
		if w, err := os.OpenFile(filepath.Join(slug, sessionA+".jsonl"), os.O_WRONLY, 0); err == nil {
			w.Close()
		}
	}
}

// An entry of the projects folder that is neither a folder nor a file
// (a FIFO here, a junction on Windows) is listed as not followed.
func TestOddSlugListed(t *testing.T) {
	d := newDesk(t)
	mkfifo(t, filepath.Join(d.claude, "projects", "-odd"))
	r := d.run(t, "sessions")
	if r.code != 0 || !strings.Contains(r.stdout, "-odd") || !strings.Contains(r.stdout, "not a plain folder, not followed") {
		t.Errorf("%+v", r)
	}
}
