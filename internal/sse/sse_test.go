package sse_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/ovrlrd/cloud/internal/claude"
	"github.com/ovrlrd/cloud/internal/devkit/ssetest"
	"github.com/ovrlrd/cloud/internal/sse"
)

// recorder records every Write call separately.
type recorder struct {
	writes [][]byte
}

func (r *recorder) Write(p []byte) (int, error) {
	r.writes = append(r.writes, bytes.Clone(p))
	return len(p), nil
}

func (r *recorder) stream() []byte { return bytes.Join(r.writes, nil) }

// sendEach sends each event through its own Writer (a Writer refuses
// events after a terminal one) into one recorder.
func sendEach(t *testing.T, evs ...sse.Event) *recorder {
	t.Helper()
	rec := &recorder{}
	for _, e := range evs {
		if err := sse.NewWriter(rec).Send(e); err != nil {
			t.Fatalf("Send(%+v): %v", e, err)
		}
	}
	return rec
}

func send(t *testing.T, evs ...sse.Event) *recorder {
	t.Helper()
	rec := &recorder{}
	w := sse.NewWriter(rec)
	for _, e := range evs {
		if err := w.Send(e); err != nil {
			t.Fatalf("Send(%+v): %v", e, err)
		}
	}
	return rec
}

// tricky is content the app regularly sees, plus everything that needs
// escaping.
const tricky = "Done ✓ 🎉👩🏽‍💻 \"quoted\" \\back\\slash\nline two\r\nCRLF\ttab \u2028LS \u2029PS <b>&amp;</b> \x00\x01\x1f\x7f é 日本語"

func TestSendFraming(t *testing.T) {
	tests := []struct {
		name string
		ev   sse.Event
		want string
	}{
		{"chunk", sse.Event{Type: sse.Chunk, Content: "Let me check that file."},
			`data: {"type":"chunk","content":"Let me check that file."}` + "\n\n"},
		{"chunk empty content is kept", sse.Event{Type: sse.Chunk},
			`data: {"type":"chunk","content":""}` + "\n\n"},
		{"segment_end", sse.Event{Type: sse.SegmentEnd, ConversationID: "c1", Content: "Let me check."},
			`data: {"type":"segment_end","content":"Let me check.","conversationId":"c1"}` + "\n\n"},
		{"segment_end empty content is kept", sse.Event{Type: sse.SegmentEnd, ConversationID: "c1"},
			`data: {"type":"segment_end","content":"","conversationId":"c1"}` + "\n\n"},
		{"tool_start", sse.Event{Type: sse.ToolStart, ToolName: "Read"},
			`data: {"type":"tool_start","toolName":"Read"}` + "\n\n"},
		{"tool_end", sse.Event{Type: sse.ToolEnd, ToolName: "mcp__github__create_issue"},
			`data: {"type":"tool_end","toolName":"mcp__github__create_issue"}` + "\n\n"},
		{"complete", sse.Event{Type: sse.Complete, ConversationID: "c1"},
			`data: {"type":"complete","conversationId":"c1"}` + "\n\n"},
		{"complete with title", sse.Event{Type: sse.Complete, ConversationID: "c1", Title: "Fix streaming bug"},
			`data: {"type":"complete","conversationId":"c1","title":"Fix streaming bug"}` + "\n\n"},
		{"no_response", sse.Event{Type: sse.NoResponse, ConversationID: "c1", Message: "This command completed but produced no visible output."},
			`data: {"type":"no_response","conversationId":"c1","message":"This command completed but produced no visible output."}` + "\n\n"},
		{"error", sse.Event{Type: sse.Error, Message: "Request timed out"},
			`data: {"type":"error","message":"Request timed out"}` + "\n\n"},
		{"permission_required", sse.Event{Type: sse.PermissionRequired, ConversationID: "c1", Denials: []claude.Denial{
			{ToolName: "Bash", ToolUseID: "toolu_01", ToolInput: json.RawMessage(`{"command": "npm install", "description":"Install deps"}`)},
			{ToolName: "Write", ToolUseID: "toolu_02", ToolInput: json.RawMessage(`{}`)},
		}},
			`data: {"type":"permission_required","conversationId":"c1","denials":[` +
				`{"tool_name":"Bash","tool_use_id":"toolu_01","tool_input":{"command":"npm install","description":"Install deps"}},` +
				`{"tool_name":"Write","tool_use_id":"toolu_02","tool_input":{}}]}` + "\n\n"},
		{"permission_required without denials writes []", sse.Event{Type: sse.PermissionRequired, ConversationID: "c1"},
			`data: {"type":"permission_required","conversationId":"c1","denials":[]}` + "\n\n"},
		{"ping", sse.Event{Type: sse.Ping}, `data: {"type":"ping"}` + "\n\n"},
		{"escapes", sse.Event{Type: sse.Chunk, Content: "a\"b\\c\nd\re\tf\bg\fh\x00i\x1fj\x7fk\u2028l\u2029m<>&✓\xffz"},
			`data: {"type":"chunk","content":"a\"b\\c\nd\re\tf\bg\fh\u0000i\u001fj` + "\x7f" + `k\u2028l\u2029m<>&✓\ufffdz"}` + "\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := send(t, tt.ev)
			if len(rec.writes) != 1 {
				t.Fatalf("%d writes, want 1", len(rec.writes))
			}
			if got := string(rec.writes[0]); got != tt.want {
				t.Errorf("wire:\n got %s\nwant %s", got, tt.want)
			}
			b, err := tt.ev.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.TrimSuffix(strings.TrimPrefix(tt.want, "data: "), "\n\n"); string(b) != want {
				t.Errorf("MarshalJSON:\n got %s\nwant %s", b, want)
			}
		})
	}
}

func TestPing(t *testing.T) {
	rec := &recorder{}
	w := sse.NewWriter(rec)
	if err := w.Ping(); err != nil {
		t.Fatal(err)
	}
	if err := w.Ping(); err != nil {
		t.Fatal(err)
	}
	if len(rec.writes) != 2 || string(rec.writes[0]) != "data: {\"type\":\"ping\"}\n\n" || string(rec.writes[1]) != string(rec.writes[0]) {
		t.Fatalf("writes = %q", rec.writes)
	}
}

// TestFrameShape checks the framing invariants on every event kind: one
// Write per event, LF only, the JSON on a single line, `type` first.
func TestFrameShape(t *testing.T) {
	rec := sendEach(t, everyKind(tricky)...)
	if len(rec.writes) != len(everyKind(tricky)) {
		t.Fatalf("%d writes for %d events", len(rec.writes), len(everyKind(tricky)))
	}
	for _, w := range rec.writes {
		s := string(w)
		if !utf8.ValidString(s) {
			t.Errorf("frame is not valid UTF-8: %q", s)
		}
		if !strings.HasPrefix(s, `data: {"type":"`) || !strings.HasSuffix(s, "}\n\n") {
			t.Errorf("bad frame %q", s)
		}
		body := strings.TrimSuffix(s, "\n\n")
		if strings.ContainsAny(body, "\n\r") || strings.Contains(body, "\u2028") || strings.Contains(body, "\u2029") {
			t.Errorf("raw line break inside frame %q", s)
		}
	}
}

// everyKind returns one event of every type, carrying s in each string
// field the type uses.
func everyKind(s string) []sse.Event {
	return []sse.Event{
		{Type: sse.Chunk, Content: s},
		{Type: sse.SegmentEnd, ConversationID: "6f1c2d3e-0000-4000-8000-000000000001", Content: s},
		{Type: sse.ToolStart, ToolName: s},
		{Type: sse.ToolEnd, ToolName: s},
		{Type: sse.Ping},
		{Type: sse.Complete, ConversationID: "6f1c2d3e-0000-4000-8000-000000000001", Title: s},
		{Type: sse.NoResponse, ConversationID: "c", Message: s},
		{Type: sse.PermissionRequired, ConversationID: "c", Denials: []claude.Denial{
			{ToolName: s, ToolUseID: "toolu_01", ToolInput: json.RawMessage(`{"command":` + mustJSON(s) + `}`)},
		}},
		{Type: sse.Error, Message: s},
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestClientDecodesEveryKind runs every event kind through the app's
// decoding rules and checks the fields come back exactly.
func TestClientDecodesEveryKind(t *testing.T) {
	for _, s := range []string{
		tricky, "", " ", "plain", "✓ Approved: Bash, Write", "🎉", "\r", "\n\n", "data: x\n\n",
		"\u2028", "a\u2029b", `{"type":"error"}`, "\t spaced \t",
	} {
		evs := everyKind(s)
		rec := sendEach(t, evs...)
		got, err := ssetest.Decode(rec.stream())
		if err != nil {
			t.Fatalf("content %q: client decode: %v", s, err)
		}
		if len(got) != len(evs) {
			t.Fatalf("content %q: %d events decoded, want %d", s, len(got), len(evs))
		}
		for i, e := range evs {
			g := got[i]
			if g.Type != e.Type || g.Content != e.Content || g.ConversationID != e.ConversationID ||
				g.Message != e.Message || g.ToolName != e.ToolName || g.Title != e.Title {
				t.Errorf("content %q: event %d decoded as %+v, sent %+v", s, i, g, e)
			}
			if (e.Type == sse.Chunk || e.Type == sse.SegmentEnd) && !g.Present["content"] {
				t.Errorf("%s without content key", e.Type)
			}
			if e.Type == sse.PermissionRequired {
				if len(g.Denials) != 1 || g.Denials[0].ToolName != s || g.Denials[0].ToolInput["command"] != s {
					t.Errorf("content %q: denials decoded as %+v", s, g.Denials)
				}
			}
		}
	}
}

// The translator normalizes every tool_input; an event that slipped past
// it is refused whole rather than written as a frame the app cannot parse.
func TestSendRefusesAnEventThatDoesNotEncode(t *testing.T) {
	rec := &recorder{}
	w := sse.NewWriter(rec)
	ev := sse.Event{Type: sse.PermissionRequired, ConversationID: "c",
		Denials: []claude.Denial{{ToolName: "Bash", ToolUseID: "t1", ToolInput: json.RawMessage(`{"a":`)}}}
	if err := w.Send(ev); err == nil || len(rec.writes) != 0 {
		t.Fatalf("Send = %v, %d writes; want an error and nothing written", err, len(rec.writes))
	}
	if err := w.Send(sse.Event{Type: sse.Chunk, Content: "a"}); err != nil || len(rec.writes) != 1 {
		t.Fatalf("the stream is unusable after a refused event: %v", err)
	}
}

func TestNormalizeToolInput(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "{}"},
		{"null", "{}"},
		{" null ", "{}"},
		{"[]", "{}"},
		{`"s"`, "{}"},
		{"true", "{}"},
		{"{", "{}"},
		{`{"a":1,}`, "{}"},
		{`{"a":1} {}`, "{}"},
		{" {\n \"a\" : [ 1 , { \"b\" : null } ] , \"c\":true}\n", `{"a":[1,{"b":null}],"c":true}`},
		{`{}`, `{}`},
		{` { } `, `{}`},
		// key order and number literals are kept
		{`{"z":1,"a":2,"m":1.50e3}`, `{"z":1,"a":2,"m":1.50e3}`},
		{`{"command":"ls -la\n","n":[1,[2,{}],[]],"o":{"p":{"q":false}}}`, `{"command":"ls -la\n","n":[1,[2,{}],[]],"o":{"p":{"q":false}}}`},
		// escapes are re-encoded canonically; U+2028 escaped; HTML not escaped
		{`{"s":"\u0041\u00e9\/<>&\u2028"}`, `{"s":"Aé/<>&\u2028"}`},
		// a valid surrogate pair becomes raw UTF-8
		{`{"e":"\ud83c\udf89"}`, `{"e":"🎉"}`},
		// a lone surrogate (the app's decoder rejects it) becomes U+FFFD
		{`{"e":"x\ud83cy"}`, `{"e":"x` + "\uFFFD" + `y"}`},
		// invalid UTF-8 becomes U+FFFD
		{"{\"e\":\"a\xffb\"}", `{"e":"a` + "\uFFFD" + `b"}`},
		// keys are strings too
		{`{"\u00e9":1}`, `{"é":1}`},
	}
	for _, tt := range tests {
		got := string(sse.NormalizeToolInput(json.RawMessage(tt.in)))
		if got != tt.want {
			t.Errorf("NormalizeToolInput(%q) = %s, want %s", tt.in, got, tt.want)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(got), &m); err != nil || m == nil {
			t.Errorf("NormalizeToolInput(%q) = %s: not an object", tt.in, got)
		}
	}
	in := json.RawMessage(`{"a":1}`)
	out := sse.NormalizeToolInput(in)
	out[2] = 'X'
	if string(in) != `{"a":1}` {
		t.Error("result aliases the input")
	}
}

func TestUnknownTypeNotWritten(t *testing.T) {
	for _, typ := range []string{"", "title_update", "Chunk", "message_ready"} {
		rec := &recorder{}
		w := sse.NewWriter(rec)
		err := w.Send(sse.Event{Type: typ, ConversationID: "c", Title: "t"})
		if !errors.Is(err, sse.ErrUnknownType) {
			t.Errorf("Send(type %q) = %v, want ErrUnknownType", typ, err)
		}
		if len(rec.writes) != 0 {
			t.Errorf("type %q: wrote %q", typ, rec.writes)
		}
		if err := w.Send(sse.Event{Type: sse.Chunk, Content: "ok"}); err != nil {
			t.Errorf("Send after rejected type: %v", err)
		}
	}
}

func TestNothingAfterTerminal(t *testing.T) {
	for _, term := range []sse.Event{
		{Type: sse.Complete, ConversationID: "c"},
		{Type: sse.NoResponse, ConversationID: "c", Message: "m"},
		{Type: sse.PermissionRequired, ConversationID: "c", Denials: []claude.Denial{{ToolName: "Bash", ToolUseID: "t"}}},
		{Type: sse.Error, Message: "boom"},
	} {
		rec := &recorder{}
		w := sse.NewWriter(rec)
		if err := w.Send(term); err != nil {
			t.Fatal(err)
		}
		if err := w.Send(sse.Event{Type: sse.Error, Message: "Failed to store response"}); !errors.Is(err, sse.ErrAfterTerminal) {
			t.Errorf("%s: Send after terminal = %v", term.Type, err)
		}
		if err := w.Ping(); !errors.Is(err, sse.ErrAfterTerminal) {
			t.Errorf("%s: Ping after terminal = %v", term.Type, err)
		}
		if len(rec.writes) != 1 {
			t.Errorf("%s: %d writes, want 1", term.Type, len(rec.writes))
		}
	}
}

func TestTerminal(t *testing.T) {
	want := map[string]bool{
		sse.Chunk: false, sse.SegmentEnd: false, sse.ToolStart: false, sse.ToolEnd: false,
		sse.Ping: false, sse.Complete: true, sse.NoResponse: true,
		sse.PermissionRequired: true, sse.Error: true,
	}
	for typ, term := range want {
		if got := (sse.Event{Type: typ}).Terminal(); got != term {
			t.Errorf("Terminal(%s) = %v", typ, got)
		}
		if !sse.KnownType(typ) || !ssetest.Types[typ] {
			t.Errorf("%s not known", typ)
		}
	}
	if len(ssetest.Types) != len(want) {
		t.Error("the client enum and the package's types differ")
	}
}

type failWriter struct {
	n   int
	err error
	max int // bytes accepted per call, 0 = all
}

func (f *failWriter) Write(p []byte) (int, error) {
	f.n++
	if f.err != nil {
		return 0, f.err
	}
	if f.max > 0 && len(p) > f.max {
		return f.max, nil
	}
	return len(p), nil
}

func TestWriteErrorIsSticky(t *testing.T) {
	boom := errors.New("broken pipe")
	fw := &failWriter{err: boom}
	w := sse.NewWriter(fw)
	if err := w.Send(sse.Event{Type: sse.Chunk, Content: "x"}); !errors.Is(err, boom) {
		t.Fatalf("Send = %v", err)
	}
	if err := w.Ping(); !errors.Is(err, boom) {
		t.Fatalf("Ping = %v", err)
	}
	if err := w.Send(sse.Event{Type: sse.Complete, ConversationID: "c"}); !errors.Is(err, boom) {
		t.Fatalf("Send = %v", err)
	}
	if fw.n != 1 {
		t.Errorf("%d writes after the failure, want none", fw.n-1)
	}

	short := &failWriter{max: 3}
	w = sse.NewWriter(short)
	if err := w.Send(sse.Event{Type: sse.Chunk, Content: "x"}); !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("short write: Send = %v", err)
	}
}

// flushRecorder is a ResponseWriter that records when it is flushed.
type flushRecorder struct {
	recorder
	flushes []int // len(writes) at each flush
}

func (f *flushRecorder) Header() http.Header { return http.Header{} }
func (f *flushRecorder) WriteHeader(int)     {}
func (f *flushRecorder) Flush()              { f.flushes = append(f.flushes, len(f.writes)) }

type flushErrRecorder struct {
	flushRecorder
	err error
}

func (f *flushErrRecorder) FlushError() error { return f.err }

func TestFlushAfterEachEvent(t *testing.T) {
	fr := &flushRecorder{}
	w := sse.NewWriter(fr)
	_ = w.Send(sse.Event{Type: sse.Chunk, Content: "a"})
	_ = w.Ping()
	_ = w.Send(sse.Event{Type: sse.Complete, ConversationID: "c"})
	if fmt.Sprint(fr.flushes) != "[1 2 3]" {
		t.Errorf("flushes at %v, want after each write", fr.flushes)
	}

	boom := errors.New("flush failed")
	fe := &flushErrRecorder{err: boom}
	w = sse.NewWriter(fe)
	if err := w.Send(sse.Event{Type: sse.Chunk, Content: "a"}); !errors.Is(err, boom) {
		t.Errorf("Send = %v, want the flush error", err)
	}
}

// wrapped is middleware's ResponseWriter wrapper: it hides Flush but
// offers Unwrap.
type wrapped struct{ http.ResponseWriter }

func (w wrapped) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// noFlush is a ResponseWriter that cannot flush.
type noFlush struct{ h http.Header }

func (n *noFlush) Header() http.Header         { return n.h }
func (n *noFlush) Write(p []byte) (int, error) { return len(p), nil }
func (n *noFlush) WriteHeader(int)             {}

func TestFlushResponseWriter(t *testing.T) {
	rec := httptest.NewRecorder()
	w := sse.NewWriter(wrapped{rec})
	if err := w.Send(sse.Event{Type: sse.Chunk, Content: "a"}); err != nil {
		t.Fatal(err)
	}
	if !rec.Flushed || rec.Body.String() != "data: {\"type\":\"chunk\",\"content\":\"a\"}\n\n" {
		t.Errorf("flushed %v, body %q", rec.Flushed, rec.Body.String())
	}
	w = sse.NewWriter(&noFlush{h: http.Header{}})
	if err := w.Send(sse.Event{Type: sse.Chunk, Content: "a"}); err != nil {
		t.Errorf("unflushable ResponseWriter: %v", err)
	}
}

// syncRecorder is a recorder safe for concurrent writes (the Writer's
// lock is what keeps frames whole; the recorder only must not race).
type syncRecorder struct {
	mu sync.Mutex
	recorder
}

func (s *syncRecorder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recorder.Write(p)
}

func TestConcurrentSendAndPing(t *testing.T) {
	rec := &syncRecorder{}
	w := sse.NewWriter(rec)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range 200 {
			if err := w.Ping(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := range 200 {
			if err := w.Send(sse.Event{Type: sse.Chunk, Content: fmt.Sprintf("chunk %d ✓", i)}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	wg.Wait()
	got, err := ssetest.Decode(rec.stream())
	if err != nil {
		t.Fatal(err)
	}
	var chunks int
	for _, e := range got {
		if e.Type == sse.Chunk {
			if e.Content != fmt.Sprintf("chunk %d ✓", chunks) {
				t.Fatalf("chunk %d = %q", chunks, e.Content)
			}
			chunks++
		}
	}
	if chunks != 200 || len(got) != 400 {
		t.Errorf("%d chunks, %d events", chunks, len(got))
	}
}

func TestSendAllocs(t *testing.T) {
	w := sse.NewWriter(io.Discard)
	ev := sse.Event{Type: sse.Chunk, Content: "Let me check that file ✓"}
	allocs := testing.AllocsPerRun(1000, func() {
		if err := w.Send(ev); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 {
		t.Errorf("Send allocates %.1f times per small event, want at most 1", allocs)
	}
}

func BenchmarkSend(b *testing.B) {
	cases := []struct {
		name string
		ev   sse.Event
	}{
		{"chunk_ascii_40B", sse.Event{Type: sse.Chunk, Content: "Let me check that file for the bug now."}},
		{"chunk_unicode_40B", sse.Event{Type: sse.Chunk, Content: "Done ✓ 🎉 — “quoted” é 日本語 text\nnext"}},
		{"chunk_ascii_4KiB", sse.Event{Type: sse.Chunk, Content: strings.Repeat("All work and no play makes Jack. ", 128)}},
		{"tool_start", sse.Event{Type: sse.ToolStart, ToolName: "Bash"}},
		{"segment_end", sse.Event{Type: sse.SegmentEnd, ConversationID: "6f1c2d3e-0000-4000-8000-000000000001", Content: "Let me check that file."}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			w := sse.NewWriter(io.Discard)
			b.SetBytes(int64(len(c.ev.Content)))
			b.ReportAllocs()
			for b.Loop() {
				if err := w.Send(c.ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("ping", func(b *testing.B) {
		w := sse.NewWriter(io.Discard)
		b.ReportAllocs()
		for b.Loop() {
			if err := w.Ping(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
