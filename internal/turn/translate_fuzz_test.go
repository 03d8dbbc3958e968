package turn

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode"

	"github.com/ovrlrd/cloud/internal/claude"
	"github.com/ovrlrd/cloud/internal/devkit/ssetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/sse"
)

// fuzzTexts are the strings fuzz events draw from, besides the fuzzer's own.
var fuzzTexts = []string{
	"", " ", "\n\n", "Hello", "✓ done 🎉", "\u2028", "\ufeff", "\u00a0", "\u0085", "a\x00b", "\xff",
	"<local-command-stdout>out</local-command-stdout>", "<local-command-stdout> </local-command-stdout>",
	`{"type":"complete"}`, "data: x\n\n",
}

var fuzzInputs = []string{"", "null", "{}", `{"command":"ls"}`, `{ "command" : "ls" }`, `[1]`, `"x"`, `{"a":`, `{"b":1,"a":2}`, `{"a":2,"b":1}`}

// FuzzTranslator feeds random event sequences: Feed never panics and never
// returns a terminal event or a type outside the app's enum, the events are
// consistent (segment_end repeats what was streamed, tool_end follows a
// tool_start), the Outcome's Kind is one of the four, every Segment is
// non-blank, and the Segments are exactly the messages the app ends up
// holding after replaying the stream through the Writer and its decoder.
func FuzzTranslator(f *testing.F) {
	f.Add([]byte{0, 3, 1, 2, 0, 4, 9}, "Let me check.")
	f.Add([]byte{1, 1, 1, 0, 0}, "")
	f.Add([]byte{5, 0, 6, 1, 7, 2, 8, 3}, "<local-command-stdout>x</local-command-stdout>")
	f.Add([]byte{2, 1, 0, 3, 1, 10, 11, 200}, "  ")
	f.Add([]byte{9, 9, 9, 12, 13, 14, 255, 254}, "✓")
	f.Fuzz(func(t *testing.T, ops []byte, s string) {
		pick := func(i int) string {
			if i%(len(fuzzTexts)+1) == len(fuzzTexts) {
				return s
			}
			return fuzzTexts[i%(len(fuzzTexts)+1)]
		}
		next := func() int {
			if len(ops) == 0 {
				return 0
			}
			b := ops[0]
			ops = ops[1:]
			return int(b)
		}
		tr := &translator{conversationID: conv}
		var wire strings.Builder
		w := sse.NewWriter(&wire)
		var (
			streamed  string // since the last segment_end
			lastStart string
			toolOpen  bool
			dst       []sse.Event
		)
		for steps := 0; len(ops) > 0 && steps < 200; steps++ {
			var ev claude.Event
			switch op := next(); op % 12 {
			case 0, 1:
				ev = text(pick(next()))
			case 2:
				ev = tool(pick(next()))
			case 3:
				ev = blocks(claude.Block{Type: "text", Text: pick(next())}, claude.Block{Type: "tool_use", ToolName: pick(next())}, claude.Block{Type: "thinking", Text: pick(next())})
			case 4:
				ev = user(pick(next()))
			case 5:
				ev = user("<command-name>/x</command-name><local-command-stdout>" + pick(next()) + "</local-command-stdout>")
			case 6:
				ev = sysInit(pick(next()))
			case 7:
				ev = sub(text(pick(next())))
			case 8:
				ev = sub(tool(pick(next())))
			case 9:
				ev = claude.Event{Type: "result", Result: &claude.Result{Text: pick(next())}}
			case 10:
				ev = blocks(claude.Block{Type: "thinking", Text: pick(next())})
			case 11:
				ev = claude.Event{Type: pick(next()), UserText: s, Blocks: []claude.Block{{Type: "text", Text: s}}}
			}
			prefix := next() % 3
			dst = dst[:0]
			for range prefix {
				dst = append(dst, sse.Event{Type: sse.Ping})
			}
			dst = tr.Feed(dst, ev)
			for i, e := range dst {
				if i < prefix {
					if e.Type != sse.Ping {
						t.Fatal("Feed overwrote dst")
					}
					continue
				}
				if e.Terminal() || !sse.KnownType(e.Type) || e.Type == sse.Ping {
					t.Fatalf("Feed returned %+v", e)
				}
				switch e.Type {
				case sse.Chunk:
					if e.Content == "" {
						t.Fatal("empty chunk")
					}
					if toolOpen {
						t.Fatal("chunk while a tool is pending")
					}
					streamed += e.Content
				case sse.SegmentEnd:
					if e.Content != streamed || blank(e.Content) || e.ConversationID != conv {
						t.Fatalf("segment_end %q after streaming %q", e.Content, streamed)
					}
					streamed = ""
				case sse.ToolStart:
					if e.ToolName == "" {
						t.Fatal("tool_start without a name")
					}
					lastStart, toolOpen = e.ToolName, true
				case sse.ToolEnd:
					if !toolOpen || e.ToolName != lastStart {
						t.Fatalf("tool_end %q; open %v, last start %q", e.ToolName, toolOpen, lastStart)
					}
					toolOpen = false
				}
				if err := w.Send(e); err != nil {
					t.Fatal(err)
				}
			}
		}

		var result *claude.Result
		switch k := next(); k % 5 {
		case 0:
		case 1:
			result = &claude.Result{IsError: true, Text: pick(next())}
		default:
			result = &claude.Result{SessionID: pick(next())}
			for n := next() % 6; n > 0; n-- {
				result.PermissionDenials = append(result.PermissionDenials, claude.Denial{
					ToolName: pick(next()), ToolUseID: pick(next()),
					ToolInput: json.RawMessage(fuzzInputs[next()%len(fuzzInputs)]),
				})
			}
		}
		o := tr.Finish(result)
		switch o.Kind {
		case ovrlrd.OutcomeComplete, ovrlrd.OutcomePermissionRequired, ovrlrd.OutcomeNoResponse, ovrlrd.OutcomeError:
		default:
			t.Fatalf("Kind %q", o.Kind)
		}
		for _, seg := range o.Segments {
			if blank(seg) {
				t.Fatalf("blank segment %q", seg)
			}
		}
		if (o.Kind == ovrlrd.OutcomePermissionRequired) != (len(o.Denials) > 0) {
			t.Fatalf("Kind %s with %d denials", o.Kind, len(o.Denials))
		}
		seen := map[string]bool{}
		for _, d := range o.Denials {
			if !json.Valid(d.ToolInput) || d.ToolInput[0] != '{' {
				t.Fatalf("tool_input %s", d.ToolInput)
			}
			key := d.ToolName + ":" + string(d.ToolInput)
			if seen[key] {
				t.Fatalf("duplicate denial %s", key)
			}
			seen[key] = true
		}
		if o.Kind == ovrlrd.OutcomeComplete && len(o.Segments) == 0 || o.Kind == ovrlrd.OutcomeNoResponse && len(o.Segments) > 0 {
			t.Fatalf("Kind %s with %d segments", o.Kind, len(o.Segments))
		}
		if len(o.Pending) != boolInt(toolOpen) {
			t.Fatalf("Pending %+v with tool open %v", o.Pending, toolOpen)
		}
		for _, e := range o.Pending {
			if e.Type != sse.ToolEnd || e.ToolName != lastStart {
				t.Fatalf("Pending %+v", e)
			}
			if err := w.Send(e); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Send(o.Terminal(conv, pick(next()))); err != nil {
			t.Fatal(err)
		}

		evs, err := ssetest.Decode([]byte(wire.String()))
		if err != nil {
			t.Fatalf("client decode: %v", err)
		}
		c := &client{}
		for _, e := range evs {
			c.handle(t, e)
		}
		if !c.done {
			t.Fatal("no terminal event")
		}
		if o.Kind == ovrlrd.OutcomeComplete || o.Kind == ovrlrd.OutcomePermissionRequired {
			if len(c.messages) != len(o.Segments) {
				t.Fatalf("client holds %q, store gets %q", c.messages, o.Segments)
			}
			for i := range c.messages {
				// The wire replaces invalid UTF-8; the store gets the raw text.
				if c.messages[i] != string([]rune(o.Segments[i])) {
					t.Fatalf("message %d: client %q, store %q", i, c.messages[i], o.Segments[i])
				}
			}
		}
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// blank is JavaScript's trim() == "", written independently of the package.
func blank(s string) bool {
	return strings.TrimFunc(s, func(r rune) bool {
		return r == '\ufeff' || r != '\u0085' && unicode.IsSpace(r)
	}) == ""
}
