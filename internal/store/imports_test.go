package store_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/store"
)

// importer is a store and a user of it, who imports.
func importer(t *testing.T) (*store.Store, ovrlrd.User) {
	t.Helper()
	s := storetest.New(t)
	u, err := s.CreateUser(context.Background(), "", "001234."+rand.Text())
	if err != nil {
		t.Fatal(err)
	}
	return s, u
}

// importedMessages are n alternating messages, a second apart from t0.
func importedMessages(n int, t0 time.Time) []ovrlrd.ImportedMessage {
	msgs := make([]ovrlrd.ImportedMessage, n)
	for i := range msgs {
		role := ovrlrd.RoleUser
		if i%2 == 1 {
			role = ovrlrd.RoleAssistant
		}
		msgs[i] = ovrlrd.ImportedMessage{Role: role, Content: fmt.Sprint("message ", i), CreatedAt: t0.Add(time.Duration(i) * time.Second)}
	}
	return msgs
}

// An import of more messages than a transaction holds shows nothing until
// it ends, then everything, in order, with the desk's times; the session
// cannot be imported twice.
func TestImport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, u := importer(t)
	session := uuid.NewString()
	conv, err := s.BeginImport(ctx, u.ID, session)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	msgs := importedMessages(260, t0)
	for i := 0; i < len(msgs); i += 100 {
		if err := s.ImportMessages(ctx, u.ID, conv, msgs[i:min(i+100, len(msgs))]); err != nil {
			t.Fatal(err)
		}
	}
	// Not visible half-way.
	expectCode(t, errOf(s.Conversation(ctx, u.ID, conv)), ovrlrd.ENOTFOUND)
	if list, _, err := s.ListConversations(ctx, u.ID, ovrlrd.Page{Limit: 10}); err != nil || len(list) != 0 {
		t.Fatalf("listed half-way: %+v, %v", list, err)
	}
	c, err := s.FinishImport(ctx, ovrlrd.ImportFinish{
		UserID: u.ID, ConversationID: conv, SessionID: session, Title: "From the desk", Workspace: "v1",
		Messages: len(msgs), CreatedAt: t0, UpdatedAt: msgs[len(msgs)-1].CreatedAt,
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.ClaudeSessionID == nil || *c.ClaudeSessionID != session || c.Title == nil || *c.Title != "From the desk" || c.Workspace != "v1" || c.Checkout {
		t.Fatalf("conversation %+v", c)
	}
	got, err := s.Conversation(ctx, u.ID, conv)
	if err != nil || !got.CreatedAt.Time().Equal(t0) || !got.UpdatedAt.Time().Equal(msgs[len(msgs)-1].CreatedAt) {
		t.Fatalf("read back %+v, %v", got, err)
	}
	var all []ovrlrd.Message
	page := ovrlrd.Page{Limit: 100}
	for {
		ms, next, err := s.Messages(ctx, conv, page)
		if err != nil {
			t.Fatal(err)
		}
		all = append(ms, all...)
		if next == "" {
			break
		}
		page.Cursor = next
	}
	if len(all) != len(msgs) {
		t.Fatalf("%d messages, want %d", len(all), len(msgs))
	}
	for i, m := range all {
		if m.Content != msgs[i].Content || m.Role != msgs[i].Role || !m.CreatedAt.Time().Equal(msgs[i].CreatedAt) {
			t.Fatalf("message %d: %+v, want %+v", i, m, msgs[i])
		}
	}
	// A second import of the session names the first conversation.
	_, err = s.BeginImport(ctx, u.ID, session)
	expectCode(t, err, ovrlrd.ECONFLICT)
	if !strings.Contains(ovrlrd.ErrorMessage(err), conv) {
		t.Fatalf("the conflict does not name the conversation: %v", err)
	}
	// Another user may import the same session id for themselves.
	v, err := s.CreateUser(ctx, "", "001234."+rand.Text())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.BeginImport(ctx, v.ID, session); err != nil {
		t.Fatalf("another user's import: %v", err)
	}
}

// Two imports of one session racing: one conversation, and the other's
// finish names it.
func TestImportRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, u := importer(t)
	session := uuid.NewString()
	a, err := s.BeginImport(ctx, u.ID, session)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.BeginImport(ctx, u.ID, session)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	finish := func(conv string) error {
		_, err := s.FinishImport(ctx, ovrlrd.ImportFinish{UserID: u.ID, ConversationID: conv, SessionID: session, Messages: 1, CreatedAt: now, UpdatedAt: now})
		return err
	}
	if err := finish(a); err != nil {
		t.Fatal(err)
	}
	err = finish(b)
	expectCode(t, err, ovrlrd.ECONFLICT)
	if !strings.Contains(ovrlrd.ErrorMessage(err), a) {
		t.Fatalf("the loser's answer does not name the winner: %v", err)
	}
	if err := s.AbortImport(ctx, u.ID, b); err != nil {
		t.Fatal(err)
	}
}

// An import abandoned half-way is swept: by its abort, and by account
// deletion, which finds it through its pending item.
func TestAbandonedImportsAreSwept(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, u := importer(t)
	partition := func(conv string) int {
		var keys []struct {
			SK string `dynamo:"SK"`
		}
		err := storetest.DB().Table(storetest.TableName()).Get("PK", "CONV#"+conv).Consistent(true).All(ctx, &keys)
		if err != nil {
			t.Fatal(err)
		}
		return len(keys)
	}
	var convs []string
	for range 2 {
		conv, err := s.BeginImport(ctx, u.ID, uuid.NewString())
		if err != nil {
			t.Fatal(err)
		}
		if err := s.ImportMessages(ctx, u.ID, conv, importedMessages(30, time.Now())); err != nil {
			t.Fatal(err)
		}
		if n := partition(conv); n != 30 {
			t.Fatalf("%d items written, want 30", n)
		}
		convs = append(convs, conv)
	}
	if err := s.AbortImport(ctx, u.ID, convs[0]); err != nil {
		t.Fatal(err)
	}
	if n := partition(convs[0]); n != 0 {
		t.Fatalf("%d items left after the abort", n)
	}
	if _, err := s.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if n := partition(convs[1]); n != 0 {
		t.Fatalf("%d items of an abandoned import left after the account's deletion", n)
	}
	// A deleted account begins no import.
	expectCode(t, errOf(s.BeginImport(ctx, u.ID, uuid.NewString())), ovrlrd.EUNAUTHORIZED)
}

// An import on a project attaches it with no checkout yet and counts a use;
// a project deleted meanwhile fails the import's end, which leaves nothing.
func TestImportOnAProject(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, u := importer(t)
	p, err := s.CreateProject(ctx, ovrlrd.Project{UserID: u.ID, Name: "app", RepoURL: "https://git.example.com/app.git", Branch: "main"})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	finish := func(session string) (string, error) {
		conv, err := s.BeginImport(ctx, u.ID, session)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.ImportMessages(ctx, u.ID, conv, importedMessages(2, t0)); err != nil {
			t.Fatal(err)
		}
		_, err = s.FinishImport(ctx, ovrlrd.ImportFinish{UserID: u.ID, ConversationID: conv, SessionID: session, Workspace: "v1",
			Project: &p, Messages: 2, CreatedAt: t0, UpdatedAt: t0.Add(time.Second)})
		return conv, err
	}
	conv, err := finish(uuid.NewString())
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Conversation(ctx, u.ID, conv)
	if err != nil || c.ProjectID != p.ID || c.Branch != ovrlrd.ProjectBranch(conv) || c.WorkDir != "app" || c.Base != "" || !c.Checkout {
		t.Fatalf("conversation %+v, %v", c, err)
	}
	if got, err := s.Project(ctx, u.ID, p.ID); err != nil || got.AccessCount != 1 || got.LastUsed == nil {
		t.Fatalf("project %+v, %v", got, err)
	}

	if err := s.DeleteProject(ctx, u.ID, p.ID); err != nil {
		t.Fatal(err)
	}
	conv, err = finish(uuid.NewString())
	expectCode(t, err, ovrlrd.ENOTFOUND)
	expectCode(t, errOf(s.Conversation(ctx, u.ID, conv)), ovrlrd.ENOTFOUND)
}

// A message too long for an item (a long paste at the desk) is kept cut,
// with a marker, on a rune boundary; the import goes on.
func TestImportCutsALongMessage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, u := importer(t)
	conv, err := s.BeginImport(ctx, u.ID, uuid.NewString())
	if err != nil {
		t.Fatal(err)
	}
	msgs := importedMessages(2, time.Now())
	msgs[1].Content = strings.Repeat("é", store.MaxContentBytes)
	if err := s.ImportMessages(ctx, u.ID, conv, msgs); err != nil {
		t.Fatal(err)
	}
	ms, _, err := s.Messages(ctx, conv, ovrlrd.Page{Limit: 10})
	if err != nil || len(ms) != 2 {
		t.Fatalf("%d messages, %v", len(ms), err)
	}
	long := ms[1].Content
	if len(long) > store.MaxContentBytes || !utf8.ValidString(long) || !strings.HasSuffix(long, "Claude still has all of it.]") ||
		!strings.HasPrefix(long, "éé") {
		t.Fatalf("the long message: %d bytes, ends %q", len(long), long[max(len(long)-40, 0):])
	}
}

// Deleting an imported conversation releases its session: it may be
// imported again.
func TestDeletedImportReleasesTheSession(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, u := importer(t)
	session := uuid.NewString()
	t0 := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	imp := func() (string, error) {
		conv, err := s.BeginImport(ctx, u.ID, session)
		if err != nil {
			return "", err
		}
		if err := s.ImportMessages(ctx, u.ID, conv, importedMessages(2, t0)); err != nil {
			t.Fatal(err)
		}
		_, err = s.FinishImport(ctx, ovrlrd.ImportFinish{UserID: u.ID, ConversationID: conv, SessionID: session, Workspace: "v1",
			Messages: 2, CreatedAt: t0, UpdatedAt: t0.Add(time.Second)})
		return conv, err
	}
	first, err := imp()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Imported(ctx, u.ID, session); err != nil || got != first {
		t.Fatalf("imported: %q, %v", got, err)
	}
	if _, err := imp(); !ovrlrd.IsCode(err, ovrlrd.ECONFLICT) {
		t.Fatalf("a second import: %v", err)
	}
	if err := s.DeleteConversation(ctx, u.ID, first); err != nil {
		t.Fatal(err)
	}
	expectCode(t, errOf(s.Imported(ctx, u.ID, session)), ovrlrd.ENOTFOUND)
	second, err := imp()
	if err != nil || second == first {
		t.Fatalf("import after the deletion: %q, %v", second, err)
	}
	if got, err := s.Imported(ctx, u.ID, session); err != nil || got != second {
		t.Fatalf("imported again: %q, %v", got, err)
	}
}
