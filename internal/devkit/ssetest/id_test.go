package ssetest

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// readIDs reads stream to its end and returns, for each event, its data,
// the id ID gave after it, and the retry Retry gave after it.
func readIDs(t *testing.T, stream string) (got []string, err error) {
	t.Helper()
	r := NewReader(strings.NewReader(stream))
	if r.ID() != "" || r.Retry() != "" {
		t.Fatalf("a new reader has id %q, retry %q", r.ID(), r.Retry())
	}
	for {
		data, err := r.Next()
		if err != nil {
			return got, err
		}
		got = append(got, fmt.Sprintf("%s id=%q retry=%q", data, r.ID(), r.Retry()))
	}
}

// ID is the id line of the event Next returned, wherever it is among the
// event's lines, the last one if several; it holds for that event only:
// one without an id line has "", and the id of an event the app skips (no
// data) goes nowhere. Retry is the last retry line read, kept across
// events. Neither line changes the data.
func TestReaderIDAndRetry(t *testing.T) {
	long := strings.Repeat("Q", 40<<10)
	for _, c := range []struct {
		name, stream string
		want         []string
	}{
		{"id before data", "id: T.1\ndata: a\n\n", []string{`a id="T.1" retry=""`}},
		{"id after data", "data: a\nid: T.1\n\n", []string{`a id="T.1" retry=""`}},
		{"id between data lines", "data: a\nid: T.1\ndata: b\n\n", []string{`ab id="T.1" retry=""`}},
		{"the last id line counts", "id: T.1\ndata: a\nid: T.2\n\n", []string{`a id="T.2" retry=""`}},
		{"an event without id has none", "id: T.1\ndata: a\n\ndata: b\n\nid: T.3\ndata: c\n\n",
			[]string{`a id="T.1" retry=""`, `b id="" retry=""`, `c id="T.3" retry=""`}},
		{"the id of an event without data goes nowhere", "id: T.1\n\n\nid: T.2\nevent: x\n\ndata: a\n\n",
			[]string{`a id="" retry=""`}},
		{"the id of a skipped event does not reach the next", "data: a\n\nid: T.2\n: comment\n\ndata: b\n\n",
			[]string{`a id="" retry=""`, `b id="" retry=""`}},
		{"retry first, then id and data", "retry: 2000\nid: T.1\ndata: a\n\n", []string{`a id="T.1" retry="2000"`}},
		{"retry lasts", "retry: 2000\ndata: a\n\ndata: b\n\nretry: 500\nid: T.3\ndata: c\n\ndata: d\n\n",
			[]string{`a id="" retry="2000"`, `b id="" retry="2000"`, `c id="T.3" retry="500"`, `d id="" retry="500"`}},
		{"retry in an event without data", "retry: 700\n\ndata: a\n\n", []string{`a id="" retry="700"`}},
		{"a retry line alone after a blank first line", "data: a\n\n\nretry: 9\n\ndata: b\n\n",
			[]string{`a id="" retry=""`, `b id="" retry="9"`}},
		{"id lines look like data", "id: data: x\ndata: a\n\n", []string{`a id="data: x" retry=""`}},
		{"data looks like an id line", "data: id: T.1\n\n", []string{`id: T.1 id="" retry=""`}},
		{"data looks like a retry line", "data: retry: 1\n\n", []string{`retry: 1 id="" retry=""`}},
		{"an id longer than the buffer", "id: " + long + "\ndata: a\n\ndata: b\n\n",
			[]string{`a id="` + long + `" retry=""`, `b id="" retry=""`}},
		{"ids of the reattach protocol", "retry: 3000\nid: ABCD234.1\ndata: {\"type\":\"chunk\"}\n\ndata: {\"type\":\"ping\"}\n\nid: ABCD234.2\ndata: {\"type\":\"complete\"}\n\n",
			[]string{`{"type":"chunk"} id="ABCD234.1" retry="3000"`, `{"type":"ping"} id="" retry="3000"`, `{"type":"complete"} id="ABCD234.2" retry="3000"`}},
	} {
		got, err := readIDs(t, c.stream)
		if err != io.EOF {
			t.Errorf("%s: ended with %v", c.name, err)
		}
		if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
			t.Errorf("%s:\n got %.200q\nwant %.200q", c.name, got, c.want)
		}
	}
}

// A stream that ends inside an event: the event never reached the app,
// so its id is not one a client that reattaches may send back as received
// (it would skip the event). ID is the last event's, or "".
func TestReaderIDAfterAnIncompleteEvent(t *testing.T) {
	for _, tail := range []string{"id: T.2\ndata: b\n", "id: T.2\n", "data: b\nid: T.2"} {
		r := NewReader(strings.NewReader("id: T.1\ndata: a\n\n" + tail))
		if data, err := r.Next(); err != nil || string(data) != "a" || r.ID() != "T.1" {
			t.Fatalf("first event %q, id %q, %v", data, r.ID(), err)
		}
		if _, err := r.Next(); !errors.Is(err, ErrIncomplete) {
			t.Fatalf("tail %q: %v, want ErrIncomplete", tail, err)
		}
		if id := r.ID(); id != "" && id != "T.1" {
			t.Errorf("tail %q: after the incomplete event ID is %q, the id of an event never returned", tail, id)
		}
	}
}

// The id stays the event's after the reader has gone on to read the next
// event's lines from the same buffer, and the ID string is a copy.
func TestReaderIDIsACopy(t *testing.T) {
	r := NewReader(strings.NewReader("id: AAAA.1\ndata: a\n\nid: BBBB.2\ndata: b\n\n"))
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	first := r.ID()
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if first != "AAAA.1" || r.ID() != "BBBB.2" {
		t.Errorf("ids %q then %q", first, r.ID())
	}
}

// Decode gives each event its id; Data, like the app, ignores id and
// retry lines.
func TestDecodeIDs(t *testing.T) {
	evs, err := Decode([]byte("retry: 1000\nid: T.1\ndata: {\"type\":\"chunk\",\"content\":\"a\"}\n\n" +
		"data: {\"type\":\"ping\"}\n\n" +
		"data: {\"type\":\"complete\",\"conversationId\":\"c\"}\nid: T.2\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		got = append(got, e.Type+"@"+e.ID)
	}
	if strings.Join(got, " ") != "chunk@T.1 ping@ complete@T.2" {
		t.Errorf("decoded %q", got)
	}
	if evs[0].Content != "a" || evs[0].Data != `{"type":"chunk","content":"a"}` || evs[2].ConversationID != "c" {
		t.Errorf("decoded %+v", evs)
	}
	for _, ev := range []string{"id: T.1\ndata: x", "retry: 5\ndata: x", "data: x\nid: T.1", "id: T.1\nretry: 1\ndata: x\nid: T.2"} {
		if data, ok := Data([]byte(ev)); !ok || data != "x" {
			t.Errorf("Data(%q) = %q, %v", ev, data, ok)
		}
	}
	if data, ok := Data([]byte("id: T.1\nretry: 5")); ok {
		t.Errorf("an event of an id and a retry line has data %q", data)
	}
}
