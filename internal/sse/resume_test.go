package sse_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/claude"
	"github.com/ovrlrd/cloud/internal/devkit/ssetest"
	"github.com/ovrlrd/cloud/internal/sse"
)

// resumeContents are strings carried in every field of every event kind by
// the tests of resumable streams: what needs escaping, what looks like a
// frame, and what looks like an id or retry line.
var resumeContents = []string{
	tricky, "", " ", "plain", "🎉👩🏽‍💻", "\n\n", "\r\n", "data: x\n\n", "id: T.9\n\n", "retry: 1\n",
	"\u2028\u2029", "\x00", "\xff", `"}` + "\n\n" + `{"type":"complete"}`, `{"type":"error"}`,
}

// An event with an ID is framed `id: <ID>\n` then its data line; the
// retry line leads the stream's first write only, in the same Write call,
// whatever that write is; a ping carries no id.
func TestIDAndRetryFraming(t *testing.T) {
	rec := &recorder{}
	w := sse.NewWriter(rec)
	w.Retry(2500 * time.Millisecond)
	steps := []struct {
		send func() error
		want string
	}{
		{func() error { return w.Send(sse.Event{ID: "TURN1.1", Type: sse.Chunk, Content: "Let me check."}) },
			"retry: 2500\nid: TURN1.1\ndata: {\"type\":\"chunk\",\"content\":\"Let me check.\"}\n\n"},
		{w.Ping, "data: {\"type\":\"ping\"}\n\n"},
		{func() error { return w.Send(sse.Event{ID: "TURN1.2", Type: sse.ToolStart, ToolName: "Read"}) },
			"id: TURN1.2\ndata: {\"type\":\"tool_start\",\"toolName\":\"Read\"}\n\n"},
		{func() error { return w.Send(sse.Event{Type: sse.ToolEnd, ToolName: "Read"}) },
			"data: {\"type\":\"tool_end\",\"toolName\":\"Read\"}\n\n"},
		{func() error { return w.Send(sse.Logged("TURN1.3", []byte(`{"type":"chunk","content":"x"}`))) },
			"id: TURN1.3\ndata: {\"type\":\"chunk\",\"content\":\"x\"}\n\n"},
		{func() error { return w.Send(sse.Logged("", []byte(`{"type":"chunk","content":"y"}`))) },
			"data: {\"type\":\"chunk\",\"content\":\"y\"}\n\n"},
		{func() error { return w.Send(sse.Event{ID: "TURN1.4", Type: sse.Complete, ConversationID: "c1"}) },
			"id: TURN1.4\ndata: {\"type\":\"complete\",\"conversationId\":\"c1\"}\n\n"},
	}
	for i, s := range steps {
		if err := s.send(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if len(rec.writes) != i+1 {
			t.Fatalf("step %d: %d writes, want one per event", i, len(rec.writes))
		}
		if got := string(rec.writes[i]); got != s.want {
			t.Errorf("step %d:\n got %q\nwant %q", i, got, s.want)
		}
	}

	// The first write a ping: the retry line leads it.
	rec = &recorder{}
	w = sse.NewWriter(rec)
	w.Retry(time.Second)
	w.Retry(3 * time.Second) // the last one set counts
	if err := w.Ping(); err != nil {
		t.Fatal(err)
	}
	if err := w.Ping(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"retry: 3000\ndata: {\"type\":\"ping\"}\n\n", "data: {\"type\":\"ping\"}\n\n"}; fmt.Sprintf("%q", rec.writes) != fmt.Sprintf("%q", want) {
		t.Errorf("writes %q, want %q", rec.writes, want)
	}

	// Without Retry there is no retry line; a terminal event replayed first
	// carries it too.
	rec = send(t, sse.Event{ID: "A.1", Type: sse.Chunk})
	if got := string(rec.stream()); got != "id: A.1\ndata: {\"type\":\"chunk\",\"content\":\"\"}\n\n" {
		t.Errorf("without Retry: %q", got)
	}
	rec = &recorder{}
	w = sse.NewWriter(rec)
	w.Retry(1500 * time.Millisecond)
	if err := w.Send(sse.Logged("B.7", []byte(`{"type":"error","message":"m"}`))); err != nil {
		t.Fatal(err)
	}
	if got := string(rec.stream()); got != "retry: 1500\nid: B.7\ndata: {\"type\":\"error\",\"message\":\"m\"}\n\n" {
		t.Errorf("a replayed terminal first: %q", got)
	}
}

// A refused event writes nothing, so the stream's first real write still
// carries the retry line, whichever check refused it.
func TestRetryOutlivesARefusedEvent(t *testing.T) {
	refusals := map[string]func(*sse.Writer) error{
		"unknown type":      func(w *sse.Writer) error { return w.Send(sse.Event{Type: "title_update"}) },
		"id with a newline": func(w *sse.Writer) error { return w.Send(sse.Event{ID: "T.1\n", Type: sse.Chunk}) },
		"replay of bad data": func(w *sse.Writer) error {
			return w.Send(sse.Logged("T.1", []byte("{\"type\":\"chunk\",\n\"content\":\"\"}")))
		},
		"replay of a bad id":  func(w *sse.Writer) error { return w.Send(sse.Logged("T.1\r", []byte(`{"type":"chunk"}`))) },
		"an event that fails": func(w *sse.Writer) error { return w.Send(unencodable) },
	}
	for name, refuse := range refusals {
		rec := &recorder{}
		w := sse.NewWriter(rec)
		w.Retry(2 * time.Second)
		if err := refuse(w); err == nil || len(rec.writes) != 0 {
			t.Errorf("%s: %v, %d writes; want an error and nothing written", name, err, len(rec.writes))
			continue
		}
		if err := w.Ping(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := string(rec.stream()); got != "retry: 2000\ndata: {\"type\":\"ping\"}\n\n" {
			t.Errorf("%s: the first write after it is %q, want it to lead with the retry line", name, got)
		}
	}
}

// unencodable is an event Send refuses after its type and id passed: a
// denial whose tool_input is not JSON.
var unencodable = sse.Event{Type: sse.PermissionRequired, ConversationID: "c",
	Denials: []claude.Denial{{ToolName: "Bash", ToolUseID: "t1", ToolInput: json.RawMessage(`{"a":`)}}}

// Replaying what Encode made writes exactly the bytes Send writes, for
// every event kind and whatever its strings hold; Encode is the JSON Send
// frames, without the ID.
func TestReplayWritesWhatSendWrites(t *testing.T) {
	for _, s := range resumeContents {
		for _, e := range append(everyKind(s),
			sse.Event{Type: sse.PermissionRequired, ConversationID: "c"}, // denials: []
			sse.Event{Type: sse.PermissionRequired, ConversationID: "c", Denials: []claude.Denial{
				{ToolName: "Bash", ToolUseID: "toolu_1", ToolInput: sse.NormalizeToolInput(json.RawMessage(`{"command":"ls\n","n":[1,2.50e1,{"x":null}]}`))},
				{ToolName: "Write", ToolUseID: "toolu_2", ToolInput: json.RawMessage(`{}`)},
			}},
			sse.Event{Type: sse.SegmentEnd, ConversationID: "c"},
			sse.Event{Type: sse.Complete, ConversationID: "c", Content: s}, // a field the type does not use
		) {
			for _, id := range []string{"", "TURN.1", "T2ZK4Q.999999999", "id: x data: y"} {
				e.ID = id
				data, err := sse.Encode(e)
				if err != nil {
					t.Fatalf("Encode(%+v): %v", e, err)
				}
				e.ID = ""
				plain, err := e.MarshalJSON()
				if err != nil || !bytes.Equal(data, plain) {
					t.Fatalf("Encode(%q with id %q) = %s, MarshalJSON without the id = %s, %v", e.Type, id, data, plain, err)
				}
				e.ID = id

				sent, replayed := &recorder{}, &recorder{}
				sw, rw := sse.NewWriter(sent), sse.NewWriter(replayed)
				sw.Retry(time.Second)
				rw.Retry(time.Second)
				if err := sw.Send(e); err != nil {
					t.Fatalf("Send(%+v): %v", e, err)
				}
				if err := rw.Send(sse.Logged(e.ID, data)); err != nil {
					t.Fatalf("Send(Logged(%q, %s)): %v", e.ID, data, err)
				}
				if len(replayed.writes) != 1 {
					t.Fatalf("%s: %d writes", e.Type, len(replayed.writes))
				}
				if !bytes.Equal(sent.writes[0], replayed.writes[0]) {
					t.Fatalf("%s with id %q:\n   sent %q\nreplayed %q", e.Type, id, sent.writes[0], replayed.writes[0])
				}
			}
		}
	}
	if _, err := sse.Encode(sse.Event{Type: "title_update", Title: "t"}); !errors.Is(err, sse.ErrUnknownType) {
		t.Errorf("Encode of an unknown type: %v", err)
	}
}

// Replay refuses data of no known type, data with a line break (it would
// end the frame), and an id that does not fit on its line; it writes
// nothing then, and the stream goes on. Send refuses such an id too.
func TestReplayRefuses(t *testing.T) {
	for _, c := range []struct {
		name, id, data string
		unknown        bool // refused with ErrUnknownType
	}{
		{"unknown type", "T.1", `{"type":"title_update","title":"x"}`, true},
		{"no type", "T.1", `{"content":"x"}`, true},
		{"a type of the wrong case", "T.1", `{"type":"Chunk","content":"x"}`, true},
		{"not JSON", "T.1", `data: {"type":"chunk"}`, true},
		{"truncated JSON", "T.1", `{"type":"chunk","content":"x`, true},
		{"two values", "T.1", `{"type":"chunk"} {"type":"complete"}`, true},
		{"empty", "T.1", ``, true},
		{"a newline in the data", "T.1", "{\"type\":\"chunk\",\n\"content\":\"x\"}", true},
		{"a trailing newline", "T.1", "{\"type\":\"chunk\",\"content\":\"x\"}\n", true},
		{"a frame inside", "T.1", "{\"type\":\"chunk\"}\n\ndata: {\"type\":\"complete\"}", true},
		{"a carriage return", "T.1", "{\"type\":\"chunk\",\r\"content\":\"x\"}", true},
		{"an id with a newline", "T.1\ndata: {\"type\":\"complete\"}", `{"type":"chunk","content":"x"}`, false},
		{"an id ending in a newline", "T.1\n", `{"type":"chunk","content":"x"}`, false},
		{"an id with a carriage return", "T\r1", `{"type":"chunk","content":"x"}`, false},
		{"an id with NUL", "T.1\x00", `{"type":"chunk","content":"x"}`, false},
	} {
		rec := &recorder{}
		w := sse.NewWriter(rec)
		err := w.Send(sse.Logged(c.id, []byte(c.data)))
		if err == nil || errors.Is(err, sse.ErrUnknownType) != c.unknown || errors.Is(err, sse.ErrAfterTerminal) {
			t.Errorf("%s: Send(Logged) = %v", c.name, err)
		}
		if len(rec.writes) != 0 {
			t.Errorf("%s: wrote %q", c.name, rec.writes)
		}
		if err := w.Send(sse.Logged("T.2", []byte(`{"type":"chunk","content":"ok"}`))); err != nil || len(rec.writes) != 1 {
			t.Errorf("%s: the stream is unusable after the refusal: %v", c.name, err)
		}
	}
	for _, id := range []string{"T.1\n", "\nT.1", "T\r\n1", "T\x00"} {
		rec := &recorder{}
		w := sse.NewWriter(rec)
		if err := w.Send(sse.Event{ID: id, Type: sse.Chunk, Content: "x"}); err == nil || len(rec.writes) != 0 {
			t.Errorf("Send with id %q: %v, wrote %q", id, err, rec.writes)
		}
		if err := w.Send(sse.Event{ID: "T.2", Type: sse.Chunk, Content: "x"}); err != nil {
			t.Errorf("Send after a refused id %q: %v", id, err)
		}
	}
}

// Once a terminal event went out, sent or replayed, nothing more is
// written by either; before it, pings and replays mix freely.
func TestTerminalIsStickyThroughReplay(t *testing.T) {
	terminals := []sse.Event{
		{Type: sse.Complete, ConversationID: "c", Title: "t"},
		{Type: sse.NoResponse, ConversationID: "c", Message: "m"},
		{Type: sse.PermissionRequired, ConversationID: "c"},
		{Type: sse.Error, Message: "boom"},
	}
	later := map[string]func(*sse.Writer) error{
		"Send": func(w *sse.Writer) error { return w.Send(sse.Event{ID: "T.9", Type: sse.Chunk, Content: "late"}) },
		"Ping": (*sse.Writer).Ping,
		"Replay": func(w *sse.Writer) error {
			return w.Send(sse.Logged("T.9", []byte(`{"type":"chunk","content":"late"}`)))
		},
		"Replay terminal": func(w *sse.Writer) error {
			return w.Send(sse.Logged("T.9", []byte(`{"type":"error","message":"again"}`)))
		},
	}
	for _, term := range terminals {
		data, err := sse.Encode(term)
		if err != nil {
			t.Fatal(err)
		}
		for how, end := range map[string]func(*sse.Writer) error{
			"replayed": func(w *sse.Writer) error { return w.Send(sse.Logged("T.8", data)) },
			"sent": func(w *sse.Writer) error {
				e := term
				e.ID = "T.8"
				return w.Send(e)
			},
		} {
			for name, f := range later {
				rec := &recorder{}
				w := sse.NewWriter(rec)
				if err := w.Send(sse.Logged("T.7", []byte(`{"type":"chunk","content":"a"}`))); err != nil {
					t.Fatal(err)
				}
				if err := w.Ping(); err != nil {
					t.Fatal(err)
				}
				if err := end(w); err != nil {
					t.Fatalf("%s %s: %v", term.Type, how, err)
				}
				if err := f(w); !errors.Is(err, sse.ErrAfterTerminal) {
					t.Errorf("%s after %s %s = %v, want ErrAfterTerminal", name, how, term.Type, err)
				}
				if len(rec.writes) != 3 {
					t.Errorf("%s after %s %s: %d writes, want 3", name, how, term.Type, len(rec.writes))
				}
			}
		}
	}
}

// A logged event's Terminal tells a logged terminal event from the rest, and from data
// that is not an event.
func TestIsTerminal(t *testing.T) {
	for _, s := range resumeContents {
		for _, e := range everyKind(s) {
			data, err := sse.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			if got := sse.Logged("", data).Terminal(); got != e.Terminal() {
				t.Errorf("Logged(%s).Terminal() = %v, want %v", data, got, e.Terminal())
			}
		}
	}
	for _, data := range []string{
		"", "{}", "null", `"complete"`, `{"type":"completed"}`, `{"type":"Complete"}`, `{"type":"complete"`,
		`{"content":"{\"type\":\"complete\"}","type":"chunk"}`, `{"type":"chunk","content":"\"type\":\"error\""}`,
		`{"type":["complete"]}`, `data: {"type":"complete"}`,
	} {
		if sse.Logged("", []byte(data)).Terminal() {
			t.Errorf("Logged(%s).Terminal() = true", data)
		}
	}
}

// The app ignores the id and retry lines: a stream with them decodes to
// the same events as one without, and a client that reattaches reads each
// event's id back.
func TestIDsLeaveTheAppsViewUnchanged(t *testing.T) {
	for _, s := range resumeContents {
		evs := everyKind(s)
		plain, withIDs := &recorder{}, &recorder{}
		var wantIDs []string
		for i, e := range evs {
			if err := sse.NewWriter(plain).Send(e); err != nil {
				t.Fatal(err)
			}
			w := sse.NewWriter(withIDs)
			w.Retry(time.Duration(i+1) * time.Second)
			id := ""
			if e.Type != sse.Ping {
				id = fmt.Sprintf("TURN%d.%d", len(s), i+1)
			}
			wantIDs = append(wantIDs, id)
			if i%2 == 0 {
				e.ID = id
				err := w.Send(e)
				if err != nil {
					t.Fatal(err)
				}
				continue
			}
			data, err := sse.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Send(sse.Logged(id, data)); err != nil {
				t.Fatal(err)
			}
		}
		want, err := ssetest.Decode(plain.stream())
		if err != nil {
			t.Fatal(err)
		}
		got, err := ssetest.Decode(withIDs.stream())
		if err != nil {
			t.Fatalf("content %q: the app cannot decode the stream with ids: %v", s, err)
		}
		if len(got) != len(evs) || len(want) != len(evs) {
			t.Fatalf("content %q: %d events with ids, %d without, %d sent", s, len(got), len(want), len(evs))
		}
		for i := range got {
			if got[i].ID != wantIDs[i] {
				t.Errorf("content %q: event %d has id %q, want %q", s, i, got[i].ID, wantIDs[i])
			}
			if want[i].ID != "" {
				t.Errorf("content %q: event %d sent without an id decodes with %q", s, i, want[i].ID)
			}
			g := got[i]
			g.ID = ""
			if !reflect.DeepEqual(g, want[i]) {
				t.Errorf("content %q: event %d decodes as\n%+v\nwith ids, as\n%+v\nwithout", s, i, g, want[i])
			}
		}
		// The stream's text is the one without ids, once the id and retry
		// lines are taken out.
		var stripped []string
		for line := range strings.Lines(string(withIDs.stream())) {
			if !strings.HasPrefix(line, "id: ") && !strings.HasPrefix(line, "retry: ") {
				stripped = append(stripped, line)
			}
		}
		if strings.Join(stripped, "") != string(plain.stream()) {
			t.Errorf("content %q: the stream with ids is more than the id and retry lines added", s)
		}
	}
	r := ssetest.NewReader(bytes.NewReader(func() []byte {
		rec := &recorder{}
		w := sse.NewWriter(rec)
		w.Retry(4 * time.Second)
		_ = w.Send(sse.Event{ID: "T.1", Type: sse.Chunk})
		return rec.stream()
	}()))
	if _, err := r.Next(); err != nil || r.Retry() != "4000" || r.ID() != "T.1" {
		t.Errorf("the client reads retry %q, id %q, %v", r.Retry(), r.ID(), err)
	}
}
