package repo

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// headTree is the tree HEAD's commit holds in gitDir.
func headTree(t *testing.T, gitDir string) *object.Tree {
	t.Helper()
	repo, err := git.Open(gitStorage(gitDir), nil)
	if err != nil {
		t.Fatal(err)
	}
	head, err := repo.Head()
	if err != nil {
		t.Fatal(err)
	}
	c, err := repo.CommitObject(head.Hash())
	if err != nil {
		t.Fatal(err)
	}
	tree, err := c.Tree()
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// A pack of a few kilobytes can hold gigabytes of files.
func TestCheckoutSizeLimit(t *testing.T) {
	srv, r := start(t)
	if err := srv.NewRepo("zeros", map[string]string{"zeros.txt": strings.Repeat("0", 4<<20)}, "main"); err != nil {
		t.Fatal(err)
	}
	r.URL = srv.URL("zeros")
	dir := t.TempDir()
	gitDir, workDir := filepath.Join(dir, "git"), filepath.Join(dir, "work")
	base, err := Fetch(t.Context(), r, gitDir, "main", 1<<20)
	if err != nil {
		t.Fatalf("Fetch of the small pack: %v", err)
	}
	wantErr(t, Checkout(gitDir, workDir, base, "ovrlrd/z", 1<<20), ovrlrd.EINVALID,
		"The repository's files are larger than the limit of 1 MB.")
	if _, err := os.Stat(workDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("refused checkout left %s behind: %v", workDir, err)
	}
	if err := Checkout(gitDir, workDir, base, "ovrlrd/z", 8<<20); err != nil {
		t.Fatalf("Checkout within the limit: %v", err)
	}
}

func TestCheckoutRefusesWhatIsNotItsOwn(t *testing.T) {
	_, r := start(t)
	dir := t.TempDir()
	gitDir := filepath.Join(dir, "git")
	base, err := Fetch(t.Context(), r, gitDir, "main", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	file, full := filepath.Join(dir, "file"), filepath.Join(dir, "full")
	write(t, file, "mine")
	write(t, filepath.Join(full, "notes"), "mine")
	for _, workDir := range []string{file, full} {
		if err := Checkout(gitDir, workDir, base, "ovrlrd/a", 1<<20); err == nil {
			t.Errorf("Checkout into %s succeeded", workDir)
		}
	}
	for _, p := range []string{file, filepath.Join(full, "notes")} {
		if b, err := os.ReadFile(p); err != nil || string(b) != "mine" {
			t.Errorf("%s = %q, %v; want it untouched", p, b, err)
		}
	}
	// Neither refusal left the branch behind.
	if err := Checkout(gitDir, filepath.Join(dir, "work"), base, "ovrlrd/a", 1<<20); err != nil {
		t.Fatal(err)
	}
}

func TestChanges(t *testing.T) {
	_, r := start(t)
	c := checkout(t, r, "main", "ovrlrd/a")
	d, err := Changes(c.gitDir, c.workDir, c.base, 1<<20)
	if err != nil || d.Files == nil || len(d.Files) > 0 || d.Diff != "" || d.Truncated {
		t.Fatalf("Changes of a clean tree = %+v, %v", d, err)
	}

	write(t, filepath.Join(c.workDir, "README.md"), "# changed\n")
	write(t, filepath.Join(c.workDir, "new.txt"), "new\n")
	write(t, filepath.Join(c.workDir, ".gitignore"), "ignored.txt\n")
	write(t, filepath.Join(c.workDir, "ignored.txt"), "ignored\n")
	if err := os.Remove(filepath.Join(c.workDir, "src/main.go")); err != nil {
		t.Fatal(err)
	}
	indexBefore, err := os.ReadFile(filepath.Join(c.gitDir, "index"))
	if err != nil {
		t.Fatal(err)
	}
	want := changed(".gitignore", "added", "README.md", "modified", "new.txt", "added", "src/main.go", "deleted")
	d, err = Changes(c.gitDir, c.workDir, c.base, 1<<20)
	if err != nil || !slices.Equal(d.Files, want) || d.Truncated {
		t.Fatalf("Changes = %+v, %v; want %v", d, err, want)
	}
	for _, s := range []string{"-# demo\n+# changed\n", "diff --git a/new.txt b/new.txt", "+new\n", "-package main\n"} {
		if !strings.Contains(d.Diff, s) {
			t.Errorf("patch lacks %q:\n%s", s, d.Diff)
		}
	}

	// Nothing moved: not the branch, not the index.
	if indexAfter, err := os.ReadFile(filepath.Join(c.gitDir, "index")); err != nil || string(indexAfter) != string(indexBefore) {
		t.Errorf("Changes rewrote the index: %v", err)
	}
	if ref, err := gitStorage(c.gitDir).Reference("refs/heads/ovrlrd/a"); err != nil || ref.Hash().String() != c.base {
		t.Errorf("the branch moved: %v, %v", ref, err)
	}

	cut, err := Changes(c.gitDir, c.workDir, c.base, 80)
	if err != nil || !cut.Truncated || len(cut.Diff) > 80 || !strings.HasPrefix(d.Diff, cut.Diff) || !slices.Equal(cut.Files, want) {
		t.Errorf("Changes cut at 80 = %+v, %v", cut, err)
	}

	hash, committed, err := Commit(c.gitDir, c.workDir, "Change", "Ovrlrd", "bot@ovrlrd.test")
	if err != nil || !committed {
		t.Fatalf("Commit = %v, %v", committed, err)
	}
	if again, err := Changes(c.gitDir, c.workDir, c.base, 1<<20); err != nil || !slices.Equal(again.Files, want) {
		t.Errorf("Changes against the base after Commit = %+v, %v; want %v", again, err, want)
	}
	if none, err := Changes(c.gitDir, c.workDir, hash, 1<<20); err != nil || len(none.Files) > 0 {
		t.Errorf("Changes against the commit = %+v, %v; want none", none, err)
	}
}

// A .git the tools plant in the working tree, at any depth and in any
// case, is neither read nor committed: not its config (which could send
// the token elsewhere), not its exclude file, not a gitdir pointer.
func TestWorkDirDotGitIsInvisible(t *testing.T) {
	srv, r := start(t)
	c := checkout(t, r, "main", "ovrlrd/a")
	w := c.workDir
	write(t, filepath.Join(w, ".git/config"), "[url \"https://attacker.invalid/\"]\n\tinsteadOf = https://\n[core]\n\tworktree = /\n")
	write(t, filepath.Join(w, ".git/HEAD"), "ref: refs/heads/main\n")
	write(t, filepath.Join(w, ".git/info/exclude"), "hidden.txt\n")
	write(t, filepath.Join(w, ".git/objects/info/alternates"), "/elsewhere/objects\n")
	write(t, filepath.Join(w, ".GIT/config"), "[core]\n")
	write(t, filepath.Join(w, "sub/.git"), "gitdir: /elsewhere\n")
	write(t, filepath.Join(w, "sub/keep.txt"), "keep\n")
	write(t, filepath.Join(w, "hidden.txt"), "hidden\n")

	want := changed("hidden.txt", "added", "sub/keep.txt", "added")
	d, err := Changes(c.gitDir, w, c.base, 1<<20)
	if err != nil || !slices.Equal(d.Files, want) {
		t.Fatalf("Changes = %+v, %v; want %v", d.Files, err, want)
	}
	if _, committed, err := Commit(c.gitDir, w, "Add", "Ovrlrd", "bot@ovrlrd.test"); err != nil || !committed {
		t.Fatalf("Commit = %v, %v", committed, err)
	}
	err = headTree(t, c.gitDir).Files().ForEach(func(f *object.File) error {
		if strings.Contains(strings.ToLower(f.Name), ".git/") || strings.HasSuffix(strings.ToLower(f.Name), ".git") {
			t.Errorf("committed %s", f.Name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := Push(t.Context(), r, c.gitDir, "ovrlrd/a"); err != nil {
		t.Fatal(err)
	}
	if got, err := srv.ReadFile("demo", "ovrlrd/a", "hidden.txt"); err != nil || got != "hidden\n" {
		t.Errorf("server hidden.txt = %q, %v", got, err)
	}
}

// A symlink is committed and diffed as a link: what it points to outside
// the working tree is never read.
func TestSymlinksStayInside(t *testing.T) {
	_, r := start(t)
	c := checkout(t, r, "main", "ovrlrd/a")
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret.txt")
	write(t, secret, "OUTSIDE-SECRET\n")
	rel, err := filepath.Rel(c.workDir, secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(c.workDir, "README.md")); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"abs.txt": secret, "rel.txt": rel, "dir": outside, "README.md": secret} {
		if err := os.Symlink(target, filepath.Join(c.workDir, link)); err != nil {
			t.Fatal(err)
		}
	}
	want := changed("README.md", "modified", "abs.txt", "added", "dir", "added", "rel.txt", "added")
	d, err := Changes(c.gitDir, c.workDir, c.base, 1<<20)
	if err != nil || !slices.Equal(d.Files, want) {
		t.Fatalf("Changes = %+v, %v; want %v", d.Files, err, want)
	}
	if strings.Contains(d.Diff, "OUTSIDE-SECRET") {
		t.Errorf("the patch shows a file outside the working tree:\n%s", d.Diff)
	}
	if _, committed, err := Commit(c.gitDir, c.workDir, "Links", "Ovrlrd", "bot@ovrlrd.test"); err != nil || !committed {
		t.Fatalf("Commit = %v, %v", committed, err)
	}
	tree := headTree(t, c.gitDir)
	err = tree.Files().ForEach(func(f *object.File) error {
		content, err := f.Contents()
		if strings.Contains(content, "OUTSIDE-SECRET") {
			t.Errorf("committed %s with the outside file's contents", f.Name)
		}
		if f.Name != "src/main.go" && f.Mode != filemode.Symlink {
			t.Errorf("%s committed as %v; want a symlink", f.Name, f.Mode)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A FIFO would block a reader forever; git does not track one either.
func TestFIFOIsSkipped(t *testing.T) {
	_, r := start(t)
	c := checkout(t, r, "main", "ovrlrd/a")
	if err := syscall.Mkfifo(filepath.Join(c.workDir, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	if d, err := Changes(c.gitDir, c.workDir, c.base, 1<<20); err != nil || len(d.Files) > 0 {
		t.Fatalf("Changes = %+v, %v; want none", d, err)
	}
	if _, committed, err := Commit(c.gitDir, c.workDir, "Pipe", "Ovrlrd", "bot@ovrlrd.test"); err != nil || committed {
		t.Fatalf("Commit = %v, %v; want nothing committed", committed, err)
	}
}

// changed is a list of changes: path, status, path, status, ...
func changed(pathStatus ...string) []ovrlrd.FileChange {
	var out []ovrlrd.FileChange
	for i := 0; i+1 < len(pathStatus); i += 2 {
		out = append(out, ovrlrd.FileChange{Path: pathStatus[i], Status: pathStatus[i+1]})
	}
	return out
}
