package project_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ovrlrd/cloud/internal/devkit/gitserver"
	"github.com/ovrlrd/cloud/internal/devkit/kmslocal"
	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/envelope"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/project"
	"github.com/ovrlrd/cloud/internal/workspace"
)

func TestMain(m *testing.M) {
	code := storetest.Run(m)
	kmslocal.CloseShared()
	os.Exit(code)
}

// A second conversation on a project fetches only what is new since the
// project's cache was saved, and starts from the project's branch.
func TestSecondConversationFetchesOnlyWhatIsNew(t *testing.T) {
	ctx := context.Background()
	kms := kmslocal.Shared(t)
	s3 := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(s3.Close)
	files := workspace.New(storetest.AWSConfig(), workspace.Options{Bucket: "sessions", Endpoint: s3.URL, MaxBytes: 50 << 20}, slog.Default())
	if err := files.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	token := "ghp_" + rand.Text()
	git, err := gitserver.New(t.TempDir(), "octo", token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(git.Close)
	big := make([]byte, 1<<20) // random: the pack cannot compress it
	rand.Read(big)
	if err := git.NewRepo("app", map[string]string{"README.md": "Hello\n", "blob.bin": string(big)}, "main"); err != nil {
		t.Fatal(err)
	}
	st := storetest.New(t)
	svc := project.New(project.Options{
		Store: st, Sealer: envelope.New(kms.Client(), kms.KeyID()), Files: files,
		MaxBytes: 50 << 20, WorkMaxBytes: 50 << 20, CABundle: git.CertPEM(), AllowLoopback: true, Log: slog.Default(),
	})
	uid := uuid.NewString()
	p, err := svc.Create(ctx, uid, ovrlrd.NewProject{Name: "app", RepoURL: git.URL("app"), Token: token})
	if err != nil {
		t.Fatal(err)
	}

	// firstTurn prepares a new conversation's folder, as its turn does, and
	// returns how much the git host sent for it.
	firstTurn := func() (string, int64) {
		t.Helper()
		c, _, err := storetest.NewConversation(ctx, st, uid, "hello")
		if err != nil {
			t.Fatal(err)
		}
		if err := storetest.HoldRun(ctx, c.ID, "turn", time.Now(), time.Minute); err != nil {
			t.Fatal(err)
		}
		work := filepath.Join(t.TempDir(), "work")
		before := git.Served()
		err = svc.Prepare(ctx, ovrlrd.Turn{UserID: uid, ConversationID: c.ID, Holder: "turn", ProjectID: p.ID}, work)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(filepath.Join(work, "README.md")); err != nil || string(got) != "Hello\n" {
			t.Fatalf("checkout README %q, %v", got, err)
		}
		if _, err := os.Stat(filepath.Join(work, ".git")); !os.IsNotExist(err) {
			t.Fatalf("the tools' folder holds a .git: %v", err)
		}
		return c.ID, git.Served() - before
	}
	first, cold := firstTurn()
	second, warm := firstTurn()
	t.Logf("the git host sent %d bytes for the first conversation, %d for the second", cold, warm)
	if cold < 1<<20 || warm > cold/10 {
		t.Fatalf("the host sent %d bytes for the first conversation and %d for the second", cold, warm)
	}
	for _, id := range []string{first, second} {
		c, err := st.Conversation(ctx, uid, id)
		if err != nil || c.ProjectID != p.ID || c.Branch != ovrlrd.ProjectBranch(id) || len(c.Base) != 40 {
			t.Fatalf("conversation %+v, %v", c, err)
		}
	}
	// Deleting the project removes its cache; the conversations keep theirs.
	if err := svc.Delete(ctx, uid, p.ID); err != nil {
		t.Fatal(err)
	}
	if err := files.RestoreProjectCache(ctx, uid, p.ID, t.TempDir()); err == nil {
		t.Fatal("the cache outlived its project")
	}
	if err := files.RestoreGit(ctx, uid, first, filepath.Join(t.TempDir(), "git")); err != nil {
		t.Fatalf("a conversation's git directory went with its project: %v", err)
	}
}
