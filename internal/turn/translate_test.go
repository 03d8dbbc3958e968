package turn

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/claude"
	"github.com/ovrlrd/cloud/internal/devkit/ssetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/sse"
)

const conv = "6f1c2d3e-0000-4000-8000-000000000001"

func text(parts ...string) claude.Event {
	ev := claude.Event{Type: "assistant"}
	for _, p := range parts {
		ev.Blocks = append(ev.Blocks, claude.Block{Type: "text", Text: p})
	}
	return ev
}

func tool(name string) claude.Event {
	return claude.Event{Type: "assistant", Blocks: []claude.Block{
		{Type: "tool_use", ToolName: name, ToolUseID: "toolu_" + name, Input: json.RawMessage(`{}`)},
	}}
}

func blocks(bs ...claude.Block) claude.Event { return claude.Event{Type: "assistant", Blocks: bs} }

func sub(ev claude.Event) claude.Event { ev.ParentToolUseID = "toolu_task"; return ev }

func user(s string) claude.Event { return claude.Event{Type: "user", UserText: s} }

func sysInit(id string) claude.Event {
	return claude.Event{Type: "system", Subtype: "init", SessionID: id}
}

func ok() *claude.Result { return &claude.Result{Text: "final", SessionID: "sess-result"} }

// show renders events compactly: "chunk:Hi", "tool_start:Bash", ...
func show(t *testing.T, evs []sse.Event) []string {
	t.Helper()
	out := []string{}
	for _, e := range evs {
		switch e.Type {
		case sse.Chunk, sse.SegmentEnd:
			if (e.Type == sse.SegmentEnd) != (e.ConversationID == conv) {
				t.Errorf("%s with conversationId %q", e.Type, e.ConversationID)
			}
			out = append(out, e.Type+":"+e.Content)
		case sse.ToolStart, sse.ToolEnd:
			out = append(out, e.Type+":"+e.ToolName)
		default:
			t.Errorf("Feed returned %+v", e)
			out = append(out, e.Type)
		}
	}
	return out
}

func feedAll(tr *translator, evs ...claude.Event) []sse.Event {
	var out []sse.Event
	for _, ev := range evs {
		out = tr.Feed(out, ev)
	}
	return out
}

func TestTranslator(t *testing.T) {
	tests := []struct {
		name     string
		in       []claude.Event
		result   *claude.Result
		events   []string
		pending  []string
		kind     ovrlrd.OutcomeKind
		segments []string
	}{
		{
			name:   "text only",
			in:     []claude.Event{text("Hello")},
			result: ok(), events: []string{"chunk:Hello"},
			kind: ovrlrd.OutcomeComplete, segments: []string{"Hello"},
		},
		{
			name:   "contract 3.3: text, tool, text, result",
			in:     []claude.Event{text("Let me check that file."), tool("Read"), text("The bug is on line 3.")},
			result: ok(),
			events: []string{"chunk:Let me check that file.", "segment_end:Let me check that file.", "tool_start:Read", "tool_end:Read", "chunk:The bug is on line 3."},
			kind:   ovrlrd.OutcomeComplete, segments: []string{"Let me check that file.", "The bug is on line 3."},
		},
		{
			name:   "text blocks and messages concatenate with no separator",
			in:     []claude.Event{text("A", "B"), text("C"), tool("Bash"), text("D"), text("E")},
			result: ok(),
			events: []string{"chunk:A", "chunk:B", "chunk:C", "segment_end:ABC", "tool_start:Bash", "tool_end:Bash", "chunk:D", "chunk:E"},
			kind:   ovrlrd.OutcomeComplete, segments: []string{"ABC", "DE"},
		},
		{
			name:   "several tool_starts, one lazy tool_end for the last",
			in:     []claude.Event{text("Looking."), tool("Glob"), tool("Read"), blocks(claude.Block{Type: "tool_use", ToolName: "Grep"}), text("Found it.")},
			result: ok(),
			events: []string{"chunk:Looking.", "segment_end:Looking.", "tool_start:Glob", "tool_start:Read", "tool_start:Grep", "tool_end:Grep", "chunk:Found it."},
			kind:   ovrlrd.OutcomeComplete, segments: []string{"Looking.", "Found it."},
		},
		{
			name:   "text and tool_use blocks in one message",
			in:     []claude.Event{blocks(claude.Block{Type: "text", Text: "Running."}, claude.Block{Type: "tool_use", ToolName: "Bash"}, claude.Block{Type: "text", Text: "Ran."})},
			result: ok(),
			events: []string{"chunk:Running.", "segment_end:Running.", "tool_start:Bash", "tool_end:Bash", "chunk:Ran."},
			kind:   ovrlrd.OutcomeComplete, segments: []string{"Running.", "Ran."},
		},
		{
			name:    "pending tool at the end: tool_end in Pending",
			in:      []claude.Event{text("Writing."), tool("Write")},
			result:  ok(),
			events:  []string{"chunk:Writing.", "segment_end:Writing.", "tool_start:Write"},
			pending: []string{"tool_end:Write"},
			kind:    ovrlrd.OutcomeComplete, segments: []string{"Writing."},
		},
		{
			name:   "tool first: no segment_end",
			in:     []claude.Event{tool("Bash"), text("Done.")},
			result: ok(),
			events: []string{"tool_start:Bash", "tool_end:Bash", "chunk:Done."},
			kind:   ovrlrd.OutcomeComplete, segments: []string{"Done."},
		},
		{
			name:   "blank segment is not closed; its whitespace heads the next",
			in:     []claude.Event{text("\n\n"), tool("Bash"), text("Hi")},
			result: ok(),
			events: []string{"chunk:\n\n", "tool_start:Bash", "tool_end:Bash", "chunk:Hi"},
			kind:   ovrlrd.OutcomeComplete, segments: []string{"\n\nHi"},
		},
		{
			name:   "blank trailing text is not stored",
			in:     []claude.Event{text("Answer."), tool("Bash"), text(" \n\t\u00a0\u2028\ufeff")},
			result: ok(),
			events: []string{"chunk:Answer.", "segment_end:Answer.", "tool_start:Bash", "tool_end:Bash", "chunk: \n\t\u00a0\u2028\ufeff"},
			kind:   ovrlrd.OutcomeComplete, segments: []string{"Answer."},
		},
		{
			name:   "only blank text: no_response",
			in:     []claude.Event{text("  "), text("\n")},
			result: ok(),
			events: []string{"chunk:  ", "chunk:\n"},
			kind:   ovrlrd.OutcomeNoResponse, segments: nil,
		},
		{
			name:   "U+0085 is not blank (as in JavaScript)",
			in:     []claude.Event{text("\u0085")},
			result: ok(), events: []string{"chunk:\u0085"},
			kind: ovrlrd.OutcomeComplete, segments: []string{"\u0085"},
		},
		{
			name:   "empty text block and nameless tool_use are skipped",
			in:     []claude.Event{tool("Bash"), text(""), blocks(claude.Block{Type: "tool_use"}), text("ok")},
			result: ok(),
			events: []string{"tool_start:Bash", "tool_end:Bash", "chunk:ok"},
			kind:   ovrlrd.OutcomeComplete, segments: []string{"ok"},
		},
		{
			name: "thinking, unknown blocks and other line types are ignored",
			in: []claude.Event{
				blocks(claude.Block{Type: "thinking", Text: "hmm"}, claude.Block{Type: "redacted_thinking"}, claude.Block{Type: "server_tool_use", ToolName: "web_search"}),
				{Type: "stream_event"}, {Type: "system", Subtype: "api_retry"}, {Type: "rate_limit_event"},
				{Type: "result", Result: ok()}, {Type: "user"}, {Type: "assistant"},
				text("visible"),
			},
			result: ok(), events: []string{"chunk:visible"},
			kind: ovrlrd.OutcomeComplete, segments: []string{"visible"},
		},
		{
			name:   "sub-agent messages stream like the main agent's",
			in:     []claude.Event{text("Delegating."), tool("Task"), sub(text("Sub-agent looking.")), sub(tool("Grep")), text("Summary.")},
			result: ok(),
			events: []string{"chunk:Delegating.", "segment_end:Delegating.", "tool_start:Task", "tool_end:Task", "chunk:Sub-agent looking.", "segment_end:Sub-agent looking.", "tool_start:Grep", "tool_end:Grep", "chunk:Summary."},
			kind:   ovrlrd.OutcomeComplete, segments: []string{"Delegating.", "Sub-agent looking.", "Summary."},
		},
		{
			name:   "slash command output",
			in:     []claude.Event{user("<command-name>/cost</command-name>\n<command-message>cost</command-message>"), user("<local-command-stdout>\n  Total cost: $0.0123 ✓\n</local-command-stdout>")},
			result: &claude.Result{Text: ""},
			events: []string{"chunk:Total cost: $0.0123 ✓"},
			kind:   ovrlrd.OutcomeComplete, segments: []string{"Total cost: $0.0123 ✓"},
		},
		{
			name:   "slash: first match only, appended to the current segment",
			in:     []claude.Event{text("Before:"), user("x<local-command-stdout> one </local-command-stdout><local-command-stdout>two</local-command-stdout>")},
			result: ok(),
			events: []string{"chunk:Before:", "chunk:one"},
			kind:   ovrlrd.OutcomeComplete, segments: []string{"Before:one"},
		},
		{
			name:   "slash: multi-line output kept inside, trimmed outside",
			in:     []claude.Event{user("<local-command-stdout>\ufeff\nline 1\n\nline 2\n\u00a0</local-command-stdout>")},
			result: ok(), events: []string{"chunk:line 1\n\nline 2"},
			kind: ovrlrd.OutcomeComplete, segments: []string{"line 1\n\nline 2"},
		},
		{
			name: "slash: blank, empty, unclosed, tool-result and sub-agent lines give nothing",
			in: []claude.Event{
				user("<local-command-stdout>  \n </local-command-stdout>"),
				user("<local-command-stdout></local-command-stdout>"),
				user("<local-command-stdout>never closed"),
				user("</local-command-stdout>closed first<local-command-stdout>"),
				user("<LOCAL-COMMAND-STDOUT>x</LOCAL-COMMAND-STDOUT>"),
				user(""),
				sub(user("<local-command-stdout>quoted in a prompt</local-command-stdout>")),
			},
			result: ok(), events: []string{},
			kind: ovrlrd.OutcomeNoResponse, segments: nil,
		},
		{
			name:   "slash output after a pending tool ends the tool first",
			in:     []claude.Event{tool("Bash"), user("<local-command-stdout>out</local-command-stdout>")},
			result: ok(),
			events: []string{"tool_start:Bash", "tool_end:Bash", "chunk:out"},
			kind:   ovrlrd.OutcomeComplete, segments: []string{"out"},
		},
		{
			name:   "no text at all: no_response",
			in:     []claude.Event{sysInit("s1")},
			result: ok(), events: []string{},
			kind: ovrlrd.OutcomeNoResponse,
		},
		{
			name:   "tools but no text: no_response, tool_end pending",
			in:     []claude.Event{tool("Bash"), tool("Read")},
			result: ok(),
			events: []string{"tool_start:Bash", "tool_start:Read"}, pending: []string{"tool_end:Read"},
			kind: ovrlrd.OutcomeNoResponse,
		},
		{
			name:   "is_error: error, segments still reported",
			in:     []claude.Event{text("Partial.")},
			result: &claude.Result{IsError: true, Text: "API Error: 529 Overloaded"},
			events: []string{"chunk:Partial."},
			kind:   ovrlrd.OutcomeError, segments: []string{"Partial."},
		},
		{
			name:   "nil result: error for the caller to explain",
			in:     []claude.Event{text("Half"), tool("Bash")},
			result: nil,
			events: []string{"chunk:Half", "segment_end:Half", "tool_start:Bash"}, pending: []string{"tool_end:Bash"},
			kind: ovrlrd.OutcomeError, segments: []string{"Half"},
		},
		{
			name:   "empty denials list: complete",
			in:     []claude.Event{text("ok")},
			result: &claude.Result{PermissionDenials: []claude.Denial{}},
			events: []string{"chunk:ok"},
			kind:   ovrlrd.OutcomeComplete, segments: []string{"ok"},
		},
		{
			name:   "denials take precedence over complete; segments still stored",
			in:     []claude.Event{text("I need to run npm."), tool("Bash"), text("Permission was denied.")},
			result: &claude.Result{PermissionDenials: []claude.Denial{{ToolName: "Bash", ToolUseID: "t1", ToolInput: json.RawMessage(`{"command":"npm install"}`)}}},
			events: []string{"chunk:I need to run npm.", "segment_end:I need to run npm.", "tool_start:Bash", "tool_end:Bash", "chunk:Permission was denied."},
			kind:   ovrlrd.OutcomePermissionRequired, segments: []string{"I need to run npm.", "Permission was denied."},
		},
		{
			name:   "is_error takes precedence over denials",
			in:     nil,
			result: &claude.Result{IsError: true, Text: "boom", PermissionDenials: []claude.Denial{{ToolName: "Bash", ToolUseID: "t1"}}},
			events: []string{}, kind: ovrlrd.OutcomeError,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := &translator{conversationID: conv}
			got := show(t, feedAll(tr, tt.in...))
			if want := append([]string{}, tt.events...); !reflect.DeepEqual(got, want) {
				t.Errorf("events:\n got %q\nwant %q", got, want)
			}
			o := tr.Finish(tt.result)
			if o.Kind != tt.kind {
				t.Errorf("Kind = %q, want %q", o.Kind, tt.kind)
			}
			if !reflect.DeepEqual(o.Segments, tt.segments) && (len(o.Segments) != 0 || len(tt.segments) != 0) {
				t.Errorf("Segments:\n got %q\nwant %q", o.Segments, tt.segments)
			}
			if got, want := show(t, o.Pending), append([]string{}, tt.pending...); !reflect.DeepEqual(got, want) {
				t.Errorf("Pending = %q, want %q", got, want)
			}
			if (o.Kind == ovrlrd.OutcomePermissionRequired) != (len(o.Denials) > 0) {
				t.Errorf("Kind %s with %d denials", o.Kind, len(o.Denials))
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	for _, tc := range []struct {
		result *claude.Result
		want   string
	}{
		{&claude.Result{IsError: true, Text: "API Error: 401 Invalid API key"}, "API Error: 401 Invalid API key"},
		{&claude.Result{IsError: true}, unknownError},
		{&claude.Result{IsError: true, Text: " \n"}, unknownError},
		{nil, ""},
	} {
		o := (&translator{conversationID: conv}).Finish(tc.result)
		if o.Kind != ovrlrd.OutcomeError || o.Message != tc.want {
			t.Errorf("Finish(%+v) = %s %q, want error %q", tc.result, o.Kind, o.Message, tc.want)
		}
	}
}

func TestSessionID(t *testing.T) {
	for _, tc := range []struct {
		name   string
		in     []claude.Event
		result *claude.Result
		want   string
	}{
		{"init", []claude.Event{sysInit("init-1")}, ok(), "init-1"},
		{"init wins over the result", []claude.Event{sysInit("init-1")}, &claude.Result{SessionID: "res-1"}, "init-1"},
		{"the last init wins", []claude.Event{sysInit("init-1"), sysInit("init-2"), sysInit("")}, nil, "init-2"},
		{"result when no init", nil, &claude.Result{SessionID: "res-1"}, "res-1"},
		{"result when init had none", []claude.Event{sysInit("")}, &claude.Result{SessionID: "res-1"}, "res-1"},
		{"other system lines carry none", []claude.Event{{Type: "system", Subtype: "api_retry", SessionID: "x"}}, nil, ""},
		{"none", nil, nil, ""},
	} {
		tr := &translator{conversationID: conv}
		if evs := feedAll(tr, tc.in...); len(evs) != 0 {
			t.Errorf("%s: init sent %v", tc.name, evs)
		}
		if got := tr.Finish(tc.result).SessionID; got != tc.want {
			t.Errorf("%s: SessionID = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func denial(name, id, input string) claude.Denial {
	d := claude.Denial{ToolName: name, ToolUseID: id}
	if input != "<absent>" {
		d.ToolInput = json.RawMessage(input)
	}
	return d
}

func TestDenialsDedupe(t *testing.T) {
	in := []claude.Denial{
		denial("Bash", "t1", `{"command":"npm install","description":"Install deps"}`),
		denial("Bash", "t2", `{ "command" : "npm install", "description":"Install deps" }`), // same input, other id: dropped
		denial("Bash", "t3", `{"command":"npm test"}`),                                      // same tool, other input: kept
		denial("Write", "t4", `{"command":"npm install","description":"Install deps"}`),     // other tool, same input: kept
		denial("Bash", "t5", `{"description":"Install deps","command":"npm install"}`),      // key order differs: kept (as JSON.stringify)
		denial("Bash", "t6", `{"command":"npm \u0069nstall","description":"Install deps"}`), // same value, other escape: dropped
		denial("Read", "t7", `<absent>`),
		denial("Read", "t8", `null`), // {} like the absent one: dropped
		denial("Edit", "t9", `["not","an","object"]`),
		denial("Glob", "t10", `"pattern"`),
		denial("Bash", "t11", `{"command":"npm test"}`), // repeat of t3: dropped
	}
	orig := fmt.Sprint(in)
	tr := &translator{conversationID: conv}
	feedAll(tr, text("Need permission."))
	o := tr.Finish(&claude.Result{PermissionDenials: in})
	if o.Kind != ovrlrd.OutcomePermissionRequired {
		t.Fatalf("Kind = %s", o.Kind)
	}
	var got []string
	for _, d := range o.Denials {
		got = append(got, d.ToolUseID+" "+d.ToolName+" "+string(d.ToolInput))
	}
	want := []string{
		`t1 Bash {"command":"npm install","description":"Install deps"}`,
		`t3 Bash {"command":"npm test"}`,
		`t4 Write {"command":"npm install","description":"Install deps"}`,
		`t5 Bash {"description":"Install deps","command":"npm install"}`,
		`t7 Read {}`,
		`t9 Edit {}`,
		`t10 Glob {}`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("denials:\n got %q\nwant %q", got, want)
	}
	if fmt.Sprint(in) != orig {
		t.Error("the result's denials were modified")
	}
	if !reflect.DeepEqual(o.Segments, []string{"Need permission."}) {
		t.Errorf("Segments = %q", o.Segments)
	}

	// On the wire, through the app's decoder.
	ev := o.Terminal(conv, "ignored")
	rec := &strings.Builder{}
	if err := sse.NewWriter(rec).Send(ev); err != nil {
		t.Fatal(err)
	}
	dec, err := ssetest.Decode([]byte(rec.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(dec) != 1 || dec[0].Type != sse.PermissionRequired || dec[0].ConversationID != conv || len(dec[0].Denials) != len(want) || dec[0].Present["title"] {
		t.Fatalf("decoded %+v", dec)
	}
	if dec[0].Denials[4].ToolInput == nil || len(dec[0].Denials[4].ToolInput) != 0 {
		t.Errorf("absent tool_input decoded as %v", dec[0].Denials[4].ToolInput)
	}
}

func TestTerminal(t *testing.T) {
	d := []claude.Denial{{ToolName: "Bash", ToolUseID: "t1", ToolInput: json.RawMessage(`{}`)}}
	for _, tc := range []struct {
		o     Outcome
		title string
		want  sse.Event
	}{
		{Outcome{Kind: ovrlrd.OutcomeComplete}, "", sse.Event{Type: sse.Complete, ConversationID: conv}},
		{Outcome{Kind: ovrlrd.OutcomeComplete}, "Fix streaming bug", sse.Event{Type: sse.Complete, ConversationID: conv, Title: "Fix streaming bug"}},
		{Outcome{Kind: ovrlrd.OutcomePermissionRequired, Denials: d}, "t", sse.Event{Type: sse.PermissionRequired, ConversationID: conv, Denials: d}},
		{Outcome{Kind: ovrlrd.OutcomeNoResponse}, "t", sse.Event{Type: sse.NoResponse, ConversationID: conv, Message: "This command completed but produced no visible output."}},
		{Outcome{Kind: ovrlrd.OutcomeError, Message: "Request timed out"}, "t", sse.Event{Type: sse.Error, Message: "Request timed out"}},
		{Outcome{Kind: ovrlrd.OutcomeError}, "", sse.Event{Type: sse.Error, Message: "Unknown error"}},
		{Outcome{}, "", sse.Event{Type: sse.Error, Message: "Unknown error"}},
	} {
		got := tc.o.Terminal(conv, tc.title)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Terminal(%+v) = %+v, want %+v", tc.o, got, tc.want)
		}
		if !got.Terminal() {
			t.Errorf("%s is not terminal", got.Type)
		}
	}
}

func TestFeedAppendsToDst(t *testing.T) {
	tr := &translator{conversationID: conv}
	dst := []sse.Event{{Type: sse.Ping}}
	dst = tr.Feed(dst, text("a"))
	if len(dst) != 2 || dst[0].Type != sse.Ping || dst[1].Content != "a" {
		t.Errorf("Feed = %+v", dst)
	}
	if got := tr.Feed(dst[:0], sysInit("s")); len(got) != 0 {
		t.Errorf("Feed = %+v", got)
	}
}

// client replays events as the app does (§3.5) and returns the assistant
// messages it ends up holding.
type client struct {
	streaming string
	messages  []string
	tool      string
	done      bool
}

func (c *client) handle(t *testing.T, e ssetest.Event) {
	t.Helper()
	if c.done {
		t.Fatalf("%s after the terminal event", e.Type)
	}
	switch e.Type {
	case sse.Chunk:
		c.streaming += e.Content
	case sse.SegmentEnd:
		if e.ConversationID != conv {
			t.Errorf("segment_end conversationId %q", e.ConversationID)
		}
		if e.Content != c.streaming {
			t.Errorf("segment_end content %q, streamed %q", e.Content, c.streaming)
		}
		c.messages = append(c.messages, e.Content)
		c.streaming = ""
	case sse.ToolStart:
		c.tool = e.ToolName
	case sse.ToolEnd:
		if e.ToolName != c.tool {
			t.Errorf("tool_end %q, current tool %q", e.ToolName, c.tool)
		}
		c.tool = ""
	case sse.Complete, sse.PermissionRequired:
		if e.ConversationID != conv {
			t.Errorf("%s conversationId %q", e.Type, e.ConversationID)
		}
		if !blank(c.streaming) {
			c.messages = append(c.messages, c.streaming)
		}
		c.done = true
	case sse.NoResponse, sse.Error:
		c.done = true
	}
}

// TestEndToEnd streams a turn through the Writer and the app's decoder:
// what the app shows as messages is what Outcome says to store.
func TestEndToEnd(t *testing.T) {
	tr := &translator{conversationID: conv}
	var buf []sse.Event
	var wire strings.Builder
	w := sse.NewWriter(&wire)
	for _, ev := range []claude.Event{
		sysInit("s1"), text("Let me look ✓ "), text("at \"main.go\"\n"), tool("Read"), tool("Grep"),
		sub(text("sub-agent 🎉")), text("\u2028Fixed.\r\n"), tool("Edit"),
	} {
		buf = tr.Feed(buf[:0], ev)
		for _, e := range buf {
			if err := w.Send(e); err != nil {
				t.Fatal(err)
			}
		}
	}
	o := tr.Finish(&claude.Result{PermissionDenials: []claude.Denial{{ToolName: "Edit", ToolUseID: "t1", ToolInput: json.RawMessage(`null`)}}})
	for _, e := range o.Pending {
		if err := w.Send(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Send(o.Terminal(conv, "")); err != nil {
		t.Fatal(err)
	}
	evs, err := ssetest.Decode([]byte(wire.String()))
	if err != nil {
		t.Fatal(err)
	}
	c := &client{}
	for _, e := range evs {
		c.handle(t, e)
	}
	if !c.done || c.tool != "" {
		t.Errorf("done %v, tool %q", c.done, c.tool)
	}
	if !reflect.DeepEqual(c.messages, o.Segments) {
		t.Errorf("client holds %q, store gets %q", c.messages, o.Segments)
	}
	if want := []string{"Let me look ✓ at \"main.go\"\n", "sub-agent 🎉\u2028Fixed.\r\n"}; !reflect.DeepEqual(o.Segments, want) {
		t.Errorf("Segments = %q", o.Segments)
	}
	if o.SessionID != "s1" || o.Kind != ovrlrd.OutcomePermissionRequired || string(o.Denials[0].ToolInput) != "{}" {
		t.Errorf("outcome %+v", o)
	}
}

func TestFeedTextAllocs(t *testing.T) {
	tr := &translator{conversationID: conv}
	dst := make([]sse.Event, 0, 4)
	ev := text("Let me check that file for you.")
	for range 64 { // grow the segment buffer first
		dst = tr.Feed(dst[:0], ev)
	}
	allocs := testing.AllocsPerRun(1000, func() { dst = tr.Feed(dst[:0], ev) })
	if allocs > 1 {
		t.Errorf("Feed(text) allocates %.2f times, want at most 1", allocs)
	}
}

func BenchmarkFeedText(b *testing.B) {
	ev := text("Let me check that file for the bug you mentioned.")
	closeSeg := tool("Read")
	tr := &translator{conversationID: conv}
	dst := make([]sse.Event, 0, 4)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		dst = tr.Feed(dst[:0], ev)
		if i++; i%256 == 0 { // keep the segment bounded, as tools do
			dst = tr.Feed(dst[:0], closeSeg)
		}
	}
}
