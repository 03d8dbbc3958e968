package store_test

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/store"
)

// convRig is a Store with its own call counter and, optionally, its own
// clock. Helpers are its methods so they stay out of the package namespace
// other test files share.
type convRig struct {
	*store.Store
	calls *storetest.CallCounter
	t     *testing.T
	ctx   context.Context
}

func newConvRig(t *testing.T, now func() time.Time) convRig {
	t.Helper()
	calls := &storetest.CallCounter{}
	db := store.NewDB(storetest.AWSConfig(), storetest.Endpoint(), calls.Option())
	s := store.New(db, store.Options{
		Table: storetest.TableName(), CursorKey: []byte("test-cursor-key-0123456789abcdef"), Now: now,
	})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return convRig{Store: s, calls: calls, t: t, ctx: ctx}
}

// expectCalls fails unless exactly the given DynamoDB calls ran since the
// last check.
func (r convRig) expectCalls(what string, want map[string]int) {
	r.t.Helper()
	got := r.calls.Take()
	if len(got) != len(want) {
		r.t.Fatalf("%s: DynamoDB calls %v, want %v", what, got, want)
	}
	for op, n := range want {
		if got[op] != n {
			r.t.Fatalf("%s: DynamoDB calls %v, want %v", what, got, want)
		}
	}
}

func (r convRig) user() string {
	r.t.Helper()
	u, err := r.CreateUser(r.ctx, "", "sub."+uuid.NewString())
	if err != nil {
		r.t.Fatalf("CreateUser: %v", err)
	}
	return u.ID
}

func (r convRig) conv(userID string) ovrlrd.Conversation {
	r.t.Helper()
	c, err := r.EmptyConversation(r.ctx, userID)
	if err != nil {
		r.t.Fatalf("EmptyConversation: %v", err)
	}
	return c
}

func (r convRig) append(userID, convID, content string) ovrlrd.Message {
	r.t.Helper()
	m, err := r.AppendMessage(r.ctx, userID, convID, ovrlrd.RoleUser, content)
	if err != nil {
		r.t.Fatalf("AppendMessage: %v", err)
	}
	return m
}

// convItemKey is the key of any item, for reading around the store.
type convItemKey struct {
	PK string `dynamo:"PK"`
	SK string `dynamo:"SK"`
}

// partition returns the keys of every item stored under pk, read around the
// store so that leftovers it would hide still show.
func (r convRig) partition(pk string) []convItemKey {
	r.t.Helper()
	var keys []convItemKey
	err := storetest.DB().Table(storetest.TableName()).Get("PK", pk).Consistent(true).All(r.ctx, &keys)
	if err != nil {
		r.t.Fatalf("read partition %s: %v", pk, err)
	}
	return keys
}

func (r convRig) wantCode(what string, err error, code string) {
	r.t.Helper()
	if !ovrlrd.IsCode(err, code) {
		r.t.Fatalf("%s: got %v, want %s", what, err, code)
	}
}

func (r convRig) wantNotFound(what string, err error) {
	r.t.Helper()
	r.wantCode(what, err, ovrlrd.ENOTFOUND)
	if msg := ovrlrd.ErrorMessage(err); msg != "Conversation not found" {
		r.t.Fatalf("%s: message %q, want %q", what, msg, "Conversation not found")
	}
}

// convClock is a settable clock.
type convClock struct{ ms atomic.Int64 }

func newConvClock(t time.Time) *convClock {
	c := &convClock{}
	c.ms.Store(t.UnixMilli())
	return c
}
func (c *convClock) Now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *convClock) Advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// startNew starts a turn that opens a new conversation with first.
func (r convRig) startNew(userID string, first ovrlrd.NewMessage) (ovrlrd.Conversation, ovrlrd.Message, error) {
	started, err := r.StartTurn(r.ctx, ovrlrd.TurnStart{UserID: userID, Message: first, Holder: "first", Lease: time.Minute})
	if err != nil {
		return ovrlrd.Conversation{}, ovrlrd.Message{}, err
	}
	c, err := started.Conversation(r.ctx)
	return c, started.Opening, err
}

func TestNewConversationWithFirstMessage(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 2, 1, 10, 0, 0, 123_000_000, time.UTC)
	r := newConvRig(t, func() time.Time { return at })
	ctx := r.ctx
	uid := r.user()
	r.calls.Take()

	conv, msg, err := r.startNew(uid, ovrlrd.NewMessage{Role: ovrlrd.RoleUser, Content: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	r.expectCalls("StartTurn", map[string]int{"TransactWriteItems": 1})
	if msg.ConversationID != conv.ID || msg.Content != "hello" || msg.Role != ovrlrd.RoleUser {
		t.Fatalf("first message %+v for conversation %s", msg, conv.ID)
	}
	if conv.UserID != uid || conv.Title != nil || conv.ClaudeSessionID != nil ||
		!conv.CreatedAt.Time().Equal(at) || !conv.UpdatedAt.Time().Equal(at) || !msg.CreatedAt.Time().Equal(at) {
		t.Fatalf("conversation %+v", conv)
	}
	if _, err := uuid.Parse(conv.ID); err != nil || strings.ToLower(conv.ID) != conv.ID {
		t.Fatalf("conversation id %q is not a lowercase UUID", conv.ID)
	}

	got, err := r.Conversation(ctx, uid, conv.ID)
	if err != nil {
		t.Fatal(err)
	}
	r.expectCalls("Conversation", map[string]int{"GetItem": 1})
	if got.ID != conv.ID || !got.UpdatedAt.Time().Equal(at) {
		t.Fatalf("Conversation = %+v, want %+v", got, conv)
	}
	msgs, next, err := r.Messages(ctx, conv.ID, ovrlrd.Page{Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	r.expectCalls("Messages", map[string]int{"Query": 1})
	if len(msgs) != 1 || msgs[0] != msg || next != "" {
		t.Fatalf("Messages = %+v, %q", msgs, next)
	}

	// Invalid first messages are refused before anything is written.
	_, _, err = r.startNew(uid, ovrlrd.NewMessage{Role: "tool", Content: "x"})
	r.wantCode("bad role", err, ovrlrd.EINVALID)
	_, _, err = r.startNew(uid, ovrlrd.NewMessage{Role: ovrlrd.RoleUser})
	r.wantCode("empty content", err, ovrlrd.EINVALID)
	convs, _, err := r.ListConversations(ctx, uid, ovrlrd.Page{Limit: 10})
	if err != nil || len(convs) != 1 {
		t.Fatalf("after refused creates: %d conversations, %v", len(convs), err)
	}
}

func TestEmptyListsAreNotNil(t *testing.T) {
	t.Parallel()
	r := newConvRig(t, nil)
	ctx := r.ctx
	uid := r.user()
	convs, next, err := r.ListConversations(ctx, uid, ovrlrd.Page{Limit: 20})
	if err != nil || convs == nil || len(convs) != 0 || next != "" {
		t.Fatalf("ListConversations = %#v, %q, %v", convs, next, err)
	}
	conv := r.conv(uid)
	msgs, next, err := r.Messages(ctx, conv.ID, ovrlrd.Page{Limit: 50})
	if err != nil || msgs == nil || len(msgs) != 0 || next != "" {
		t.Fatalf("Messages = %#v, %q, %v", msgs, next, err)
	}
}

// listAll pages through a user's conversations and checks each call is one
// Query.
func (r convRig) listAll(uid string, limit int) []ovrlrd.Conversation {
	t := r.t
	t.Helper()
	var all []ovrlrd.Conversation
	cursor := ""
	r.calls.Take()
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("paging does not end")
		}
		convs, next, err := r.ListConversations(r.ctx, uid, ovrlrd.Page{Limit: limit, Cursor: cursor})
		if err != nil {
			t.Fatalf("ListConversations(limit %d): %v", limit, err)
		}
		r.expectCalls("ListConversations", map[string]int{"Query": 1})
		if len(convs) > limit || (next != "" && len(convs) != limit) {
			t.Fatalf("limit %d: page of %d, next %q", limit, len(convs), next)
		}
		if strings.ContainsAny(next, "+/=") {
			t.Fatalf("cursor %q is not URL-safe", next)
		}
		all = append(all, convs...)
		if next == "" {
			return all
		}
		cursor = next
	}
}

func TestListConversationsWithEqualUpdatedAt(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 30, 14, 30, 0, 0, time.UTC)
	r := newConvRig(t, func() time.Time { return at })
	uid := r.user()
	const n = 23
	var ids []string
	for range n {
		ids = append(ids, r.conv(uid).ID)
	}
	// Equal times leave the id to order them, newest (largest key) first.
	sort.Sort(sort.Reverse(sort.StringSlice(ids)))
	for _, limit := range []int{1, 5, 22, 23, 100} {
		var got []string
		for _, c := range r.listAll(uid, limit) {
			got = append(got, c.ID)
		}
		if !slices.Equal(got, ids) {
			t.Fatalf("limit %d: listed %v, want %v", limit, got, ids)
		}
	}
}

func TestListConversationsNewestFirst(t *testing.T) {
	t.Parallel()
	clk := newConvClock(time.Date(2026, 1, 30, 14, 30, 0, 0, time.UTC))
	r := newConvRig(t, clk.Now)
	ctx := r.ctx
	uid := r.user()
	other := r.user()
	var convs []ovrlrd.Conversation
	for range 6 {
		convs = append(convs, r.conv(uid))
		clk.Advance(time.Second)
	}
	r.conv(other) // must not show up in uid's list

	// Touching the oldest ones moves them to the top, in touch order.
	if _, err := r.AppendMessage(ctx, uid, convs[0].ID, ovrlrd.RoleUser, "bump"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if _, err := r.AppendMessage(ctx, uid, convs[1].ID, ovrlrd.RoleAssistant, "bump again"); err != nil {
		t.Fatal(err)
	}
	want := []string{convs[1].ID, convs[0].ID, convs[5].ID, convs[4].ID, convs[3].ID, convs[2].ID}
	for _, limit := range []int{1, 2, 4, 20} {
		got := r.listAll(uid, limit)
		var ids []string
		for i, c := range got {
			ids = append(ids, c.ID)
			if i > 0 && c.UpdatedAt.Time().After(got[i-1].UpdatedAt.Time()) {
				t.Fatalf("limit %d: not newest first at %d", limit, i)
			}
		}
		if !slices.Equal(ids, want) {
			t.Fatalf("limit %d: %v, want %v", limit, ids, want)
		}
	}
}

func TestForeignAndMalformedIDs(t *testing.T) {
	t.Parallel()
	r := newConvRig(t, nil)
	ctx := r.ctx
	alice, bob := r.user(), r.user()
	conv, _, err := storetest.NewConversation(ctx, r.Store, alice, "secret")
	if err != nil {
		t.Fatal(err)
	}

	_, err = r.Conversation(ctx, bob, conv.ID)
	r.wantNotFound("bob reads", err)
	_, err = r.AppendMessage(ctx, bob, conv.ID, ovrlrd.RoleSystem, "injected")
	r.wantNotFound("bob appends", err)
	r.wantNotFound("bob deletes", r.DeleteConversation(ctx, bob, conv.ID))
	list, _, err := r.ListConversations(ctx, bob, ovrlrd.Page{Limit: 100})
	if err != nil || len(list) != 0 {
		t.Fatalf("bob's list: %+v, %v", list, err)
	}
	// Alice's conversation is untouched: one message, bob's append left nothing.
	if keys := r.partition("CONV#" + conv.ID); len(keys) != 1 {
		t.Fatalf("alice's conversation holds %d items, want 1", len(keys))
	}
	if got, err := r.Conversation(ctx, alice, conv.ID); err != nil || got.Title != nil {
		t.Fatalf("alice's conversation after bob: %+v, %v", got, err)
	}

	// A cursor of alice's list is no good for bob's, nor a message cursor
	// of one conversation for another.
	r.conv(alice)
	_, aliceNext, err := r.ListConversations(ctx, alice, ovrlrd.Page{Limit: 1})
	if err != nil || aliceNext == "" {
		t.Fatalf("alice's first page: %q, %v", aliceNext, err)
	}
	_, _, err = r.ListConversations(ctx, bob, ovrlrd.Page{Limit: 1, Cursor: aliceNext})
	r.wantCode("alice's cursor on bob's list", err, ovrlrd.EINVALID)
	if _, err := r.AppendMessage(ctx, alice, conv.ID, ovrlrd.RoleAssistant, "reply"); err != nil {
		t.Fatal(err)
	}
	_, msgNext, err := r.Messages(ctx, conv.ID, ovrlrd.Page{Limit: 1})
	if err != nil || msgNext == "" {
		t.Fatalf("messages first page: %q, %v", msgNext, err)
	}
	other := r.conv(alice)
	_, _, err = r.Messages(ctx, other.ID, ovrlrd.Page{Limit: 1, Cursor: msgNext})
	r.wantCode("message cursor on another conversation", err, ovrlrd.EINVALID)
	_, _, err = r.Messages(ctx, conv.ID, ovrlrd.Page{Limit: 1, Cursor: aliceNext})
	r.wantCode("list cursor on messages", err, ovrlrd.EINVALID)

	malformed := []string{"", "nope", strings.ToUpper(conv.ID), "{" + conv.ID + "}", "urn:uuid:" + conv.ID,
		conv.ID + "#", "../" + conv.ID, strings.ReplaceAll(conv.ID, "-", "")}
	for _, id := range malformed {
		r.calls.Take()
		_, err := r.Conversation(ctx, alice, id)
		r.wantNotFound("Conversation("+id+")", err)
		_, err = r.AppendMessage(ctx, alice, id, ovrlrd.RoleUser, "x")
		r.wantNotFound("AppendMessage("+id+")", err)
		r.wantNotFound("DeleteConversation("+id+")", r.DeleteConversation(ctx, alice, id))
		_, _, err = r.Messages(ctx, id, ovrlrd.Page{Limit: 5})
		r.wantNotFound("Messages("+id+")", err)
		r.expectCalls("malformed id "+id, map[string]int{})
	}
}

func TestPageLimits(t *testing.T) {
	t.Parallel()
	r := newConvRig(t, nil)
	ctx := r.ctx
	uid := r.user()
	conv := r.conv(uid)
	for _, limit := range []int{-1, 0, store.MaxPageLimit + 1} {
		_, _, err := r.ListConversations(ctx, uid, ovrlrd.Page{Limit: limit})
		r.wantCode("list limit", err, ovrlrd.EINVALID)
		_, _, err = r.Messages(ctx, conv.ID, ovrlrd.Page{Limit: limit})
		r.wantCode("messages limit", err, ovrlrd.EINVALID)
	}
	_, _, err := r.ListConversations(ctx, uid, ovrlrd.Page{Limit: 5, Cursor: "garbage"})
	r.wantCode("garbage cursor", err, ovrlrd.EINVALID)
}

func TestDeleteConversationRemovesPartition(t *testing.T) {
	t.Parallel()
	r := newConvRig(t, nil)
	ctx := r.ctx
	uid := r.user()
	conv := r.conv(uid)
	keep := r.conv(uid)
	for i := range 60 {
		if _, err := r.AppendMessage(ctx, uid, conv.ID, ovrlrd.RoleUser, "m"+strings.Repeat("x", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.AppendMessage(ctx, uid, keep.ID, ovrlrd.RoleUser, "stays"); err != nil {
		t.Fatal(err)
	}
	// Another kind of item in the same partition (a run lease, later) goes too.
	err := storetest.DB().Table(storetest.TableName()).Put(convItemKey{PK: "CONV#" + conv.ID, SK: "RUN"}).Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(r.partition("CONV#" + conv.ID)); n != 61 {
		t.Fatalf("partition holds %d items before delete, want 61", n)
	}

	if err := r.DeleteConversation(ctx, uid, conv.ID); err != nil {
		t.Fatal(err)
	}
	if keys := r.partition("CONV#" + conv.ID); len(keys) != 0 {
		t.Fatalf("left behind: %v", keys)
	}
	// The owner's retry succeeds (its tombstone says the delete was theirs).
	if err := r.DeleteConversation(ctx, uid, conv.ID); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	_, err = r.Conversation(ctx, uid, conv.ID)
	r.wantNotFound("read after delete", err)
	_, err = r.AppendMessage(ctx, uid, conv.ID, ovrlrd.RoleAssistant, "late")
	r.wantNotFound("append after delete", err)
	if keys := r.partition("CONV#" + conv.ID); len(keys) != 0 {
		t.Fatalf("append after delete wrote %v", keys)
	}
	list, _, err := r.ListConversations(ctx, uid, ovrlrd.Page{Limit: 10})
	if err != nil || len(list) != 1 || list[0].ID != keep.ID {
		t.Fatalf("list after delete: %+v, %v", list, err)
	}
	if n := len(r.partition("CONV#" + keep.ID)); n != 1 {
		t.Fatalf("the other conversation lost messages: %d left", n)
	}
}

// A cursor is a position, not a reference: the conversation it was taken
// from may be deleted or move to the top before the next page is read.
func TestListCursorOutlivesItsConversation(t *testing.T) {
	t.Parallel()
	clk := newConvClock(time.Date(2026, 1, 30, 14, 30, 0, 0, time.UTC))
	r := newConvRig(t, clk.Now)
	uid := r.user()
	var c []ovrlrd.Conversation
	for range 5 {
		c = append(c, r.conv(uid))
		clk.Advance(time.Second)
	}
	page, next, err := r.ListConversations(r.ctx, uid, ovrlrd.Page{Limit: 2})
	if err != nil || len(page) != 2 || page[1].ID != c[3].ID {
		t.Fatalf("first page %+v, %v", page, err)
	}
	if err := r.DeleteConversation(r.ctx, uid, c[3].ID); err != nil {
		t.Fatal(err)
	}
	r.append(uid, c[2].ID, "moves to the top")
	page, next, err = r.ListConversations(r.ctx, uid, ovrlrd.Page{Limit: 2, Cursor: next})
	if err != nil || len(page) != 2 || page[0].ID != c[1].ID || page[1].ID != c[0].ID || next != "" {
		t.Fatalf("second page %+v, next %q, %v", page, next, err)
	}
}
