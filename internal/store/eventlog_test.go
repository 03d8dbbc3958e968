package store_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// A turn's log gives back every event after any sequence number, in order,
// across and within batches; another turn's and another conversation's
// events never mix in; the conversation's deletion sweeps it.
func TestEventLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	u, err := s.CreateUser(ctx, "", "001234."+rand.Text())
	if err != nil {
		t.Fatal(err)
	}
	conv, _, err := storetest.NewConversation(ctx, s, u.ID, "first")
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := storetest.NewConversation(ctx, s, u.ID, "second")
	if err != nil {
		t.Fatal(err)
	}
	turn, next := rand.Text(), rand.Text()
	events := func(from, to int) [][]byte {
		var out [][]byte
		for seq := from; seq <= to; seq++ {
			out = append(out, fmt.Appendf(nil, `{"type":"assistant_chunk","content":"%d"}`, seq))
		}
		return out
	}
	for _, b := range [][2]int{{1, 3}, {4, 4}, {5, 9}} {
		if err := s.AppendEvents(ctx, conv.ID, turn, b[0], events(b[0], b[1]), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	// Written twice (a retried batch): the log is the same.
	if err := s.AppendEvents(ctx, conv.ID, turn, 5, events(5, 9), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendEvents(ctx, conv.ID, next, 1, events(1, 2), time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, after := range []int{0, 3, 6, 9} {
		got, err := s.Events(ctx, conv.ID, turn, after)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 9-after {
			t.Fatalf("after %d: %d events", after, len(got))
		}
		for i, e := range got {
			if want := after + i + 1; e.Seq != want || string(e.Data) != string(events(want, want)[0]) {
				t.Fatalf("after %d, event %d: %d %s", after, i, e.Seq, e.Data)
			}
		}
	}
	for _, c := range []struct{ conv, turn string }{{other.ID, turn}, {conv.ID, "ANOTHER"}, {conv.ID, turn + "#"}} {
		if got, err := s.Events(ctx, c.conv, c.turn, 0); err != nil || len(got) != 0 {
			t.Fatalf("%s %s: %d events, %v", c.conv, c.turn, len(got), err)
		}
	}
	if err := s.AppendEvents(ctx, conv.ID, "not#a-turn", 1, events(1, 1), time.Hour); !ovrlrd.IsCode(err, ovrlrd.EINVALID) {
		t.Fatalf("a malformed turn id: %v", err)
	}
	// Each batch is one item, and expires.
	var items []struct {
		TTL int64 `dynamo:"ttl"`
	}
	err = storetest.DB().Table(storetest.TableName()).Get("PK", "CONV#"+conv.ID).Range("SK", dynamo.BeginsWith, "EV#").All(ctx, &items)
	if err != nil || len(items) != 4 {
		t.Fatalf("%d items, %v", len(items), err)
	}
	for _, it := range items {
		if left := time.Until(time.Unix(it.TTL, 0)); left < 50*time.Minute || left > time.Hour {
			t.Fatalf("an item expires in %v", left)
		}
	}
	if err := s.DeleteConversation(ctx, u.ID, conv.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Events(ctx, conv.ID, turn, 0); err != nil || len(got) != 0 {
		t.Fatalf("after the deletion: %d events, %v", len(got), err)
	}
}
