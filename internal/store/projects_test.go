package store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

func newProject(uid, name string) ovrlrd.Project {
	return ovrlrd.Project{UserID: uid, Name: name, RepoURL: "https://github.com/example/" + name + ".git", Branch: "main"}
}

// defaults counts the default projects of a list.
func defaults(ps []ovrlrd.Project) (n int, id string) {
	for _, p := range ps {
		if p.Default {
			n, id = n+1, p.ID
		}
	}
	return n, id
}

func TestProjects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newStepClock()
	s := clockedStore(clock)
	uid := uuid.NewString()

	if got, err := s.Projects(ctx, uid); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("no projects: %#v, %v; want empty non-nil", got, err)
	}
	if _, ok, err := s.DefaultProject(ctx, uid); ok || err != nil {
		t.Fatalf("default of no projects: %v, %v", ok, err)
	}

	sealed := []byte{0, 1, 2, 0xff, 'x'}
	in := newProject(uid, "alpha")
	in.Token = sealed
	a, err := s.CreateProject(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if !isUUID(a.ID) || a.UserID != uid || a.Name != "alpha" || a.RepoURL != in.RepoURL || a.Branch != "main" ||
		!bytes.Equal(a.Token, sealed) || a.Default || !a.CreatedAt.Time().Equal(clock.Now()) || a.UpdatedAt != a.CreatedAt {
		t.Fatalf("created %+v", a)
	}
	clock.Advance(time.Second)
	b, err := s.CreateProject(ctx, ovrlrd.Project{UserID: uid, Name: "beta", RepoURL: "git@example.com:b.git", Default: true})
	if err != nil {
		t.Fatal(err)
	}
	if !b.Default || b.Branch != "" || b.Token != nil {
		t.Fatalf("created %+v", b)
	}

	got, err := s.Projects(ctx, uid)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != a.ID || got[1].ID != b.ID {
		t.Fatalf("projects %+v, want alpha then beta", got)
	}
	if !bytes.Equal(got[0].Token, sealed) || got[0].Default || !got[1].Default {
		t.Fatalf("projects %+v", got)
	}
	if p, err := s.Project(ctx, uid, a.ID); err != nil || !bytes.Equal(p.Token, sealed) || p.Name != "alpha" || p.CreatedAt != a.CreatedAt {
		t.Fatalf("project %+v, %v", p, err)
	}
	if p, ok, err := s.DefaultProject(ctx, uid); err != nil || !ok || p.ID != b.ID || !p.Default {
		t.Fatalf("default %+v, %v, %v", p, ok, err)
	}

	// Only what is given changes.
	clock.Advance(time.Second)
	name := "alpha 2"
	p, err := s.UpdateProject(ctx, uid, a.ID, ovrlrd.ProjectUpdate{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != name || !bytes.Equal(p.Token, sealed) || p.Default || p.RepoURL != a.RepoURL ||
		p.CreatedAt != a.CreatedAt || !p.UpdatedAt.Time().Equal(clock.Now()) {
		t.Fatalf("renamed %+v", p)
	}
	newToken := []byte("sealed-2")
	yes := true
	p, err = s.UpdateProject(ctx, uid, a.ID, ovrlrd.ProjectUpdate{Token: newToken, Default: &yes})
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != name || !bytes.Equal(p.Token, newToken) || !p.Default {
		t.Fatalf("updated %+v", p)
	}
	if q, _ := s.Project(ctx, uid, b.ID); q.Default {
		t.Fatalf("beta is still the default: %+v", q)
	}
	p, err = s.UpdateProject(ctx, uid, a.ID, ovrlrd.ProjectUpdate{Token: []byte{}})
	if err != nil || p.Token != nil || !p.Default {
		t.Fatalf("token removed: %+v, %v", p, err)
	}
	// Clearing the default of a project that is not it changes nothing.
	no := false
	if _, err := s.UpdateProject(ctx, uid, b.ID, ovrlrd.ProjectUpdate{Default: &no}); err != nil {
		t.Fatal(err)
	}
	if d, ok, _ := s.DefaultProject(ctx, uid); !ok || d.ID != a.ID {
		t.Fatalf("default %+v, %v; want alpha", d, ok)
	}
	if p, err = s.UpdateProject(ctx, uid, a.ID, ovrlrd.ProjectUpdate{Default: &no}); err != nil || p.Default {
		t.Fatalf("default cleared: %+v, %v", p, err)
	}
	if _, ok, _ := s.DefaultProject(ctx, uid); ok {
		t.Fatal("a default remains after clearing it")
	}

	for _, bad := range []string{"", "   ", strings.Repeat("x", ovrlrd.MaxProjectName+1), "\xff"} {
		expectCode(t, errOf(s.CreateProject(ctx, newProject(uid, bad))), ovrlrd.EINVALID)
		expectCode(t, errOf(s.UpdateProject(ctx, uid, a.ID, ovrlrd.ProjectUpdate{Name: &bad})), ovrlrd.EINVALID)
	}
	if _, err := s.CreateProject(ctx, newProject(uid, strings.Repeat("é", ovrlrd.MaxProjectName))); err != nil {
		t.Fatalf("a name of %d characters: %v", ovrlrd.MaxProjectName, err)
	}

	if err := s.DeleteProject(ctx, uid, b.ID); err != nil {
		t.Fatal(err)
	}
	expectCode(t, s.DeleteProject(ctx, uid, b.ID), ovrlrd.ENOTFOUND)
	expectCode(t, errOf(s.Project(ctx, uid, b.ID)), ovrlrd.ENOTFOUND)
	if got, _ := s.Projects(ctx, uid); len(got) != 2 || got[0].ID != a.ID {
		t.Fatalf("after delete %+v", got)
	}
}

func errOf[T any](_ T, err error) error { return err }

func isUUID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && u.String() == s
}

// A foreign, missing or malformed id gets the same answer from every
// method, and a stranger changes nothing.
func TestProjectsOfAnotherUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	owner, stranger := uuid.NewString(), uuid.NewString()
	p, err := s.CreateProject(ctx, newProject(owner, "mine"))
	if err != nil {
		t.Fatal(err)
	}
	name, yes := "stolen", true
	var first error
	for _, c := range []struct{ uid, id string }{
		{stranger, p.ID}, {owner, uuid.NewString()}, {owner, strings.ToUpper(p.ID)}, {owner, "nope"}, {"", p.ID},
	} {
		for _, err := range []error{
			errOf(s.Project(ctx, c.uid, c.id)),
			errOf(s.UpdateProject(ctx, c.uid, c.id, ovrlrd.ProjectUpdate{Name: &name, Token: []byte("t"), Default: &yes})),
			s.DeleteProject(ctx, c.uid, c.id),
		} {
			expectCode(t, err, ovrlrd.ENOTFOUND)
			if first == nil {
				first = err
			}
			if ovrlrd.ErrorMessage(err) != ovrlrd.ErrorMessage(first) || err.Error() != first.Error() {
				t.Fatalf("%+v: %v differs from %v", c, err, first)
			}
		}
	}
	if ovrlrd.ErrorMessage(first) != "Project not found." {
		t.Fatalf("message %q", ovrlrd.ErrorMessage(first))
	}
	if got, _ := s.Projects(ctx, stranger); len(got) != 0 {
		t.Fatalf("stranger lists %+v", got)
	}
	if _, ok, _ := s.DefaultProject(ctx, stranger); ok {
		t.Fatal("stranger has a default")
	}
	if got, err := s.Project(ctx, owner, p.ID); err != nil || got.Name != "mine" || got.Default || got.Token != nil {
		t.Fatalf("owner's project after the stranger: %+v, %v", got, err)
	}
}

func TestProjectLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	uid := uuid.NewString()
	var ids []string
	for i := range ovrlrd.MaxProjects {
		p, err := s.CreateProject(ctx, newProject(uid, "p"+string(rune('a'+i))))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.ID)
	}
	expectCode(t, errOf(s.CreateProject(ctx, newProject(uid, "one too many"))), ovrlrd.ECONFLICT)
	// Another user's count is their own.
	if _, err := s.CreateProject(ctx, newProject(uuid.NewString(), "other")); err != nil {
		t.Fatal(err)
	}
	// A delete frees a place.
	if err := s.DeleteProject(ctx, uid, ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateProject(ctx, newProject(uid, "again")); err != nil {
		t.Fatal(err)
	}
	expectCode(t, errOf(s.CreateProject(ctx, newProject(uid, "one too many"))), ovrlrd.ECONFLICT)
	if got, _ := s.Projects(ctx, uid); len(got) != ovrlrd.MaxProjects {
		t.Fatalf("%d projects, want %d", len(got), ovrlrd.MaxProjects)
	}
}

func TestProjectLimitConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	uid := uuid.NewString()
	const n = 25
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.CreateProject(ctx, newProject(uid, "p"+rand.Text()[:6]))
		})
	}
	wg.Wait()
	created := 0
	for _, err := range errs {
		switch {
		case err == nil:
			created++
		case ovrlrd.IsCode(err, ovrlrd.ECONFLICT), ovrlrd.IsCode(err, ovrlrd.EUNAVAILABLE):
			// Over the limit, or lost too many races: either way not created.
		default:
			t.Fatalf("create: %v", err)
		}
	}
	got, err := s.Projects(ctx, uid)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d of %d concurrent creates succeeded", created, n)
	if len(got) != created || created > ovrlrd.MaxProjects {
		t.Fatalf("%d created, %d stored; at most %d", created, len(got), ovrlrd.MaxProjects)
	}
	// Whatever the races did, the count matches what is stored: exactly
	// the places left can still be filled.
	for range ovrlrd.MaxProjects - created {
		if _, err := s.CreateProject(ctx, newProject(uid, "fill")); err != nil {
			t.Fatal(err)
		}
	}
	expectCode(t, errOf(s.CreateProject(ctx, newProject(uid, "one too many"))), ovrlrd.ECONFLICT)
}

func TestProjectDefaultConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	uid := uuid.NewString()
	const n = 8
	ids := make([]string, n)
	for i := range n {
		p, err := s.CreateProject(ctx, ovrlrd.Project{UserID: uid, Name: fmt.Sprint("p", i), RepoURL: "r"})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = p.ID
	}
	yes := true
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, errs[i] = s.UpdateProject(ctx, uid, ids[i], ovrlrd.ProjectUpdate{Default: &yes}) })
	}
	wg.Wait()
	won := map[string]bool{}
	for i, err := range errs {
		if err == nil {
			won[ids[i]] = true
		} else if !ovrlrd.IsCode(err, ovrlrd.EUNAVAILABLE) {
			t.Fatalf("make default: %v", err)
		}
	}
	got, err := s.Projects(ctx, uid)
	if err != nil {
		t.Fatal(err)
	}
	count, id := defaults(got)
	if count != 1 || !won[id] {
		t.Fatalf("%d defaults (%s); want exactly one of those that succeeded", count, id)
	}
	if d, ok, err := s.DefaultProject(ctx, uid); err != nil || !ok || d.ID != id {
		t.Fatalf("default %+v, %v, %v; want %s", d, ok, err, id)
	}
}

func TestDeleteDefaultProject(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	uid := uuid.NewString()
	other, err := s.CreateProject(ctx, newProject(uid, "other"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.CreateProject(ctx, ovrlrd.Project{UserID: uid, Name: "main", RepoURL: "r", Default: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteProject(ctx, uid, p.ID); err != nil {
		t.Fatal(err)
	}
	if d, ok, err := s.DefaultProject(ctx, uid); ok || err != nil {
		t.Fatalf("default after its delete: %+v, %v, %v", d, ok, err)
	}
	var meta struct {
		DefaultID *string `dynamo:"defaultId"`
		Count     int     `dynamo:"projectCount"`
	}
	rawGet(t, "USER#"+uid, "PROJECTS", &meta)
	if meta.DefaultID != nil || meta.Count != 1 {
		t.Fatalf("meta after delete %+v", meta)
	}
	if got, _ := s.Projects(ctx, uid); len(got) != 1 || got[0].ID != other.ID || got[0].Default {
		t.Fatalf("projects %+v", got)
	}
	// Deleting another project leaves the default alone.
	yes := true
	if _, err := s.UpdateProject(ctx, uid, other.ID, ovrlrd.ProjectUpdate{Default: &yes}); err != nil {
		t.Fatal(err)
	}
	third, err := s.CreateProject(ctx, newProject(uid, "third"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteProject(ctx, uid, third.ID); err != nil {
		t.Fatal(err)
	}
	if d, ok, _ := s.DefaultProject(ctx, uid); !ok || d.ID != other.ID {
		t.Fatalf("default %+v, %v; want %s", d, ok, other.ID)
	}
}

func TestProjectJSON(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	uid := uuid.NewString()
	secret := []byte("sealed-secret-blob")
	in := newProject(uid, "json")
	in.Token = secret
	in.Default = true
	p, err := s.CreateProject(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"id": p.ID, "name": "json", "repoUrl": in.RepoURL, "branch": "main", "default": true,
		"hasToken": true, "label": nil, "accessCount": float64(0), "lastUsed": nil,
		"createdAt": p.CreatedAt.Time().UTC().Format(ovrlrd.TimeFormat),
		"updatedAt": p.UpdatedAt.Time().UTC().Format(ovrlrd.TimeFormat),
	}
	if len(fields) != len(want) {
		t.Fatalf("json %s", raw)
	}
	for k, v := range want {
		if fields[k] != v {
			t.Fatalf("json %s: %s is %v, want %v", raw, k, fields[k], v)
		}
	}
	for _, leak := range []string{string(secret), "c2VhbGVkLXNlY3JldC1ibG9i", uid, "token", "userId"} {
		if strings.Contains(string(raw), leak) {
			t.Fatalf("json %s shows %q", raw, leak)
		}
	}
	// The blob is stored as given, as bytes.
	var item struct {
		Token []byte `dynamo:"token"`
	}
	rawGet(t, "USER#"+uid, "PROJ#"+p.ID, &item)
	if !bytes.Equal(item.Token, secret) {
		t.Fatalf("stored token %q", item.Token)
	}
}

// Deleting an account deletes its projects and their count: DeleteUser
// removes every item under the user's partition.
func TestDeleteUserDeletesProjects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	u, err := s.CreateUser(ctx, "", "001234."+rand.Text())
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"a", "b"} {
		if _, err := s.CreateProject(ctx, ovrlrd.Project{UserID: u.ID, Name: name, RepoURL: "r", Token: []byte("t"), Default: i == 0}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	var keys []struct {
		SK string `dynamo:"SK"`
	}
	err = storetest.DB().Table(storetest.TableName()).Get("PK", "USER#"+u.ID).Consistent(true).All(ctx, &keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].SK != "PROFILE" {
		t.Fatalf("left under the user: %+v, want only the profile's tombstone", keys)
	}
	// A deleted account cannot create projects again.
	expectCode(t, errOf(s.CreateProject(ctx, newProject(u.ID, "late"))), ovrlrd.EUNAUTHORIZED)
}

// Names are unique per user: they are the directory routes' paths. A
// rename frees the old name at once.
func TestProjectNames(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	uid, other := uuid.NewString(), uuid.NewString()
	a, err := s.CreateProject(ctx, newProject(uid, "app"))
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, errOf(s.CreateProject(ctx, newProject(uid, "app"))), ovrlrd.ECONFLICT)
	if _, err := s.CreateProject(ctx, newProject(other, "app")); err != nil {
		t.Fatalf("another user's project of the same name: %v", err)
	}
	if got, err := s.ProjectNamed(ctx, uid, "app"); err != nil || got.ID != a.ID {
		t.Fatalf("named app: %+v, %v", got, err)
	}
	b, err := s.CreateProject(ctx, newProject(uid, "lib"))
	if err != nil {
		t.Fatal(err)
	}
	taken := "app"
	expectCode(t, errOf(s.UpdateProject(ctx, uid, b.ID, ovrlrd.ProjectUpdate{Name: &taken})), ovrlrd.ECONFLICT)
	renamed, label := "app 2", "My app"
	if p, err := s.UpdateProject(ctx, uid, a.ID, ovrlrd.ProjectUpdate{Name: &renamed, Label: &label}); err != nil ||
		p.Name != renamed || p.Label == nil || *p.Label != label {
		t.Fatalf("renamed %+v, %v", p, err)
	}
	expectCode(t, errOf(s.ProjectNamed(ctx, uid, "app")), ovrlrd.ENOTFOUND)
	if _, err := s.UpdateProject(ctx, uid, b.ID, ovrlrd.ProjectUpdate{Name: &taken}); err != nil {
		t.Fatalf("taking a freed name: %v", err)
	}
	empty := ""
	if p, err := s.UpdateProject(ctx, uid, a.ID, ovrlrd.ProjectUpdate{Label: &empty}); err != nil || p.Label != nil {
		t.Fatalf("label removed: %+v, %v", p, err)
	}
	for _, bad := range []string{"a/b", "tab\tname"} {
		expectCode(t, errOf(s.CreateProject(ctx, newProject(uid, bad))), ovrlrd.EINVALID)
	}
	if err := s.DeleteProject(ctx, uid, b.ID); err != nil {
		t.Fatal(err)
	}
	expectCode(t, errOf(s.ProjectNamed(ctx, uid, "app")), ovrlrd.ENOTFOUND)
	if _, err := s.CreateProject(ctx, newProject(uid, "app")); err != nil {
		t.Fatalf("a deleted project's name: %v", err)
	}
}

// A project is attached to a conversation once, by the turn that holds its
// lease; it counts a use, and a conversation never changes project.
func TestAttachProject(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newStepClock()
	s := clockedStore(clock)
	uid := uuid.NewString()
	p, err := s.CreateProject(ctx, newProject(uid, "app"))
	if err != nil {
		t.Fatal(err)
	}
	q, err := s.CreateProject(ctx, newProject(uid, "lib"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := startTurn(t, s, uid, "", "h1")
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, errOf(s.AttachProject(ctx, uid, c.ID, "not-the-holder", p, "c0ffee")), ovrlrd.ECONFLICT)
	got, err := s.AttachProject(ctx, uid, c.ID, "h1", p, "c0ffee")
	if err != nil {
		t.Fatal(err)
	}
	want := ovrlrd.ProjectBranch(c.ID)
	if got.ProjectID != p.ID || got.Branch != want || got.WorkDir != "app" || !strings.HasPrefix(want, "ovrlrd/") {
		t.Fatalf("attached %+v", got)
	}
	if again, err := s.AttachProject(ctx, uid, c.ID, "h1", p, "beef"); err != nil || again.Branch != want || again.Base != "beef" {
		t.Fatalf("attaching it again: %+v, %v", again, err)
	}
	expectCode(t, errOf(s.AttachProject(ctx, uid, c.ID, "h1", q, "c0ffee")), ovrlrd.ECONFLICT)
	if read, err := s.Conversation(ctx, uid, c.ID); err != nil || read.ProjectID != p.ID || read.Branch != want || read.WorkDir != "app" || read.Base != "beef" {
		t.Fatalf("read back %+v, %v", read, err)
	}
	used, err := s.Project(ctx, uid, p.ID)
	if err != nil || used.AccessCount != 1 || used.LastUsed == nil || !used.LastUsed.Time().Equal(clock.Now()) {
		t.Fatalf("used project %+v, %v", used, err)
	}
	// Another user's conversation, and a deleted project, are not found.
	expectCode(t, errOf(s.AttachProject(ctx, uuid.NewString(), c.ID, "h1", p, "c0ffee")), ovrlrd.ENOTFOUND)
	d, err := startTurn(t, s, uid, "", "h2")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteProject(ctx, uid, q.ID); err != nil {
		t.Fatal(err)
	}
	expectCode(t, errOf(s.AttachProject(ctx, uid, d.ID, "h2", q, "c0ffee")), ovrlrd.ENOTFOUND)
	if read, _ := s.Conversation(ctx, uid, d.ID); read.ProjectID != "" {
		t.Fatalf("a deleted project was attached: %+v", read)
	}
	// Attached without a checkout yet (a first turn that failed), a
	// conversation may still take another project; once checked out, not.
	r, err := s.CreateProject(ctx, newProject(uid, "other"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AttachProject(ctx, uid, d.ID, "h2", p, ""); err != nil {
		t.Fatal(err)
	}
	got, err = s.AttachProject(ctx, uid, d.ID, "h2", r, "")
	if err != nil || got.ProjectID != r.ID || got.WorkDir != "other" {
		t.Fatalf("another project before the checkout: %+v, %v", got, err)
	}
	if _, err := s.AttachProject(ctx, uid, d.ID, "h2", r, "beef"); err != nil {
		t.Fatal(err)
	}
	expectCode(t, errOf(s.AttachProject(ctx, uid, d.ID, "h2", p, "")), ovrlrd.ECONFLICT)
}
