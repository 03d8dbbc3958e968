package store_test

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// loadAll reads a conversation the way the app does: the newest page, then
// "load earlier" until there is nothing before. It checks that every call is
// one Query, that every page is oldest first, and returns the messages in
// chronological order.
func (r convRig) loadAll(convID string, limit int) []ovrlrd.Message {
	t := r.t
	t.Helper()
	var all []ovrlrd.Message
	cursor := ""
	r.calls.Take()
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("paging does not end")
		}
		msgs, next, err := r.Messages(r.ctx, convID, ovrlrd.Page{Limit: limit, Cursor: cursor})
		if err != nil {
			t.Fatalf("Messages(limit %d): %v", limit, err)
		}
		r.expectCalls("Messages", map[string]int{"Query": 1})
		if len(msgs) > limit || (next != "" && len(msgs) != limit) {
			t.Fatalf("limit %d: page of %d, next %q", limit, len(msgs), next)
		}
		if strings.ContainsAny(next, "+/=") {
			t.Fatalf("cursor %q is not URL-safe", next)
		}
		for i := 1; i < len(msgs); i++ {
			if !earlier(msgs[i-1], msgs[i]) {
				t.Fatalf("limit %d: page not oldest first at %d: %+v then %+v", limit, i, msgs[i-1], msgs[i])
			}
		}
		if len(all) > 0 && len(msgs) > 0 && !earlier(msgs[len(msgs)-1], all[0]) {
			t.Fatalf("limit %d: an earlier page holds a later message", limit)
		}
		all = append(slices.Clip(msgs), all...)
		if next == "" {
			return all
		}
		cursor = next
	}
}

// earlier is the store's order: by time, then by id.
func earlier(a, b ovrlrd.Message) bool {
	ta, tb := a.CreatedAt.Time(), b.CreatedAt.Time()
	return ta.Before(tb) || (ta.Equal(tb) && a.ID < b.ID)
}

func TestMessagesPagingWithOneSharedTimestamp(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 30, 14, 30, 0, 123_000_000, time.UTC)
	r := newConvRig(t, func() time.Time { return at })
	uid := r.user()
	conv := r.conv(uid)
	const n = 250
	ids := make([]string, n)
	for i := range ids {
		ids[i] = r.append(uid, conv.ID, "same millisecond").ID
	}
	// With one timestamp the id alone orders them.
	slices.Sort(ids)
	for _, limit := range []int{1, 7, 50, 100} {
		var got []string
		for _, m := range r.loadAll(conv.ID, limit) {
			if !m.CreatedAt.Time().Equal(at) {
				t.Fatalf("createdAt %v, want %v", m.CreatedAt.Time(), at)
			}
			got = append(got, m.ID)
		}
		if !slices.Equal(got, ids) {
			t.Fatalf("limit %d: read %d messages, want %d in id order", limit, len(got), len(ids))
		}
	}
}

func TestMessagesPagingAcrossTimes(t *testing.T) {
	t.Parallel()
	clk := newConvClock(time.Date(2026, 1, 30, 14, 30, 0, 0, time.UTC))
	r := newConvRig(t, clk.Now)
	uid := r.user()
	conv := r.conv(uid)
	// Runs of equal times separated by steps, so page edges land both inside
	// a run and on a step.
	var want []ovrlrd.Message
	for i := range 40 {
		if i%3 == 0 {
			clk.Advance(time.Millisecond)
		}
		want = append(want, r.append(uid, conv.ID, "m"))
	}
	slices.SortFunc(want, func(a, b ovrlrd.Message) int {
		if earlier(a, b) {
			return -1
		}
		return 1
	})
	for _, limit := range []int{1, 3, 7, 39, 40, 41} {
		if got := r.loadAll(conv.ID, limit); !slices.Equal(got, want) {
			t.Fatalf("limit %d: read %d messages that differ from the %d written", limit, len(got), len(want))
		}
	}
	// The first page is the newest messages, oldest first.
	page, next, err := r.Messages(r.ctx, conv.ID, ovrlrd.Page{Limit: 5})
	if err != nil || next == "" || !slices.Equal(page, want[len(want)-5:]) {
		t.Fatalf("first page %+v, next %q, %v", page, next, err)
	}
}

func TestAppendMessageMovesUpdatedAt(t *testing.T) {
	t.Parallel()
	clk := newConvClock(time.Date(2026, 1, 30, 14, 30, 0, 0, time.UTC))
	r := newConvRig(t, clk.Now)
	uid := r.user()
	conv := r.conv(uid)
	clk.Advance(90 * time.Second)
	r.calls.Take()
	m, err := r.AppendMessage(r.ctx, uid, conv.ID, ovrlrd.RoleSystem, "✗ Denied: Bash")
	if err != nil {
		t.Fatal(err)
	}
	r.expectCalls("AppendMessage", map[string]int{"TransactWriteItems": 1})
	got, err := r.Conversation(r.ctx, uid, conv.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.UpdatedAt.Time().Equal(clk.Now()) || !m.CreatedAt.Time().Equal(clk.Now()) {
		t.Fatalf("updatedAt %v, message %v, want %v", got.UpdatedAt.Time(), m.CreatedAt.Time(), clk.Now())
	}
	if m.Role != ovrlrd.RoleSystem || m.Content != "✗ Denied: Bash" || m.ConversationID != conv.ID {
		t.Fatalf("message %+v", m)
	}

	_, err = r.AppendMessage(r.ctx, uid, conv.ID, "tool", "x")
	r.wantCode("bad role", err, ovrlrd.EINVALID)
	_, err = r.AppendMessage(r.ctx, uid, conv.ID, ovrlrd.RoleUser, "")
	r.wantCode("empty content", err, ovrlrd.EINVALID)
	_, err = r.AppendMessage(r.ctx, uid, conv.ID, ovrlrd.RoleUser, strings.Repeat("x", 301<<10))
	r.wantCode("huge content", err, ovrlrd.ETOOLARGE)
}

// An instance whose clock lags must not move updatedAt backwards nor file
// its message before ones already written.
func TestAppendWithLaggingClock(t *testing.T) {
	t.Parallel()
	ahead := newConvClock(time.Date(2026, 1, 30, 14, 30, 0, 0, time.UTC))
	r := newConvRig(t, ahead.Now)
	lagging := newConvRig(t, func() time.Time { return ahead.Now().Add(-time.Hour) })
	uid := r.user()
	conv := r.conv(uid)
	first := r.append(uid, conv.ID, "first")

	lagging.calls.Take()
	second, err := lagging.AppendMessage(lagging.ctx, uid, conv.ID, ovrlrd.RoleAssistant, "second")
	if err != nil {
		t.Fatal(err)
	}
	// One failed attempt that reports the stored time, then one that uses it.
	lagging.expectCalls("lagging AppendMessage", map[string]int{"TransactWriteItems": 2})
	if !second.CreatedAt.Time().Equal(first.CreatedAt.Time()) {
		t.Fatalf("lagging message at %v, want the stored %v", second.CreatedAt.Time(), first.CreatedAt.Time())
	}
	got, err := r.Conversation(r.ctx, uid, conv.ID)
	if err != nil || !got.UpdatedAt.Time().Equal(ahead.Now()) {
		t.Fatalf("after lagging writes: %+v, %v", got, err)
	}
	msgs := r.loadAll(conv.ID, 10)
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want 2", len(msgs))
	}
}

func TestConcurrentAppends(t *testing.T) {
	t.Parallel()
	// Two instances whose clocks disagree by a few milliseconds, so appends
	// race both on conflicts and on the time condition.
	r := newConvRig(t, nil)
	skewed := newConvRig(t, func() time.Time { return time.Now().Add(3 * time.Millisecond) })
	uid := r.user()
	conv := r.conv(uid)

	const n = 30
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		written = map[string]ovrlrd.Message{}
		errs    []error
		stop    = make(chan struct{})
		watched = make(chan error, 1)
	)
	// A reader watching updatedAt while the appends run: it must never
	// decrease.
	go func() {
		var last time.Time
		for {
			select {
			case <-stop:
				watched <- nil
				return
			default:
			}
			c, err := r.Conversation(r.ctx, uid, conv.ID)
			if err != nil {
				watched <- err
				return
			}
			if c.UpdatedAt.Time().Before(last) {
				watched <- &ovrlrd.Error{Code: ovrlrd.EINTERNAL, Message: "updatedAt went backwards"}
				return
			}
			last = c.UpdatedAt.Time()
		}
	}()
	for i := range n {
		s := r
		if i%2 == 1 {
			s = skewed
		}
		wg.Go(func() {
			m, err := s.AppendMessage(s.ctx, uid, conv.ID, ovrlrd.RoleAssistant, "part")
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			written[m.ID] = m
		})
	}
	wg.Wait()
	close(stop)
	if err := <-watched; err != nil {
		t.Fatal(err)
	}
	if len(errs) > 0 {
		t.Fatalf("%d of %d appends failed, first: %v", len(errs), n, errs[0])
	}
	msgs := r.loadAll(conv.ID, 100)
	if len(msgs) != n {
		t.Fatalf("%d messages stored, want %d", len(msgs), n)
	}
	for _, m := range msgs {
		if written[m.ID] != m {
			t.Fatalf("stored %+v, appended %+v", m, written[m.ID])
		}
	}
	got, err := r.Conversation(r.ctx, uid, conv.ID)
	if err != nil {
		t.Fatal(err)
	}
	if newest := msgs[len(msgs)-1].CreatedAt.Time(); !got.UpdatedAt.Time().Equal(newest) {
		t.Fatalf("updatedAt %v, newest message %v", got.UpdatedAt.Time(), newest)
	}
}

func TestAppendToMissingConversationWritesNothing(t *testing.T) {
	t.Parallel()
	r := newConvRig(t, nil)
	uid := r.user()
	missing := "0b7e0d9c-5f43-4c1e-9a57-6d2f1c3b8e41"
	r.calls.Take()
	_, err := r.AppendMessage(r.ctx, uid, missing, ovrlrd.RoleUser, "orphan?")
	r.wantNotFound("append to missing conversation", err)
	r.expectCalls("failed append", map[string]int{"TransactWriteItems": 1})
	if keys := r.partition("CONV#" + missing); len(keys) != 0 {
		t.Fatalf("failed append left %v", keys)
	}
	if keys := r.partition("USER#" + uid); len(keys) != 1 {
		t.Fatalf("failed append created %v", keys)
	}
}
