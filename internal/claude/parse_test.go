package claude

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// Lines as the CLI writes them (fields it adds that the service ignores
// included).
const (
	lineInit  = `{"type":"system","subtype":"init","cwd":"/tmp/w","session_id":"5f0c1c1e-1111-4a4a-9b9b-000000000001","tools":["Bash","Read","Edit"],"mcp_servers":[],"model":"claude-sonnet-4-5","permissionMode":"default","slash_commands":["cost","context"],"apiKeySource":"ANTHROPIC_API_KEY","claude_code_version":"2.1.197","output_style":"default","agents":[],"uuid":"0b7e"}`
	lineRetry = `{"type":"system","subtype":"api_retry","attempt":1,"max_retries":3,"retry_delay_ms":1200,"error_status":529,"error":"overloaded","session_id":"s1","uuid":"u"}`
	// A typical ~200-byte assistant text line.
	lineText       = `{"type":"assistant","message":{"id":"msg_01","role":"assistant","content":[{"type":"text","text":"Here is the fix for the failing test."}],"stop_reason":null},"parent_tool_use_id":null,"session_id":"s1"}`
	lineTool       = `{"type":"assistant","message":{"id":"msg_02","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"thinking","thinking":"hmm","signature":"x"},{"type":"tool_use","id":"toolu_01","name":"Bash","input":{"command":"go test ./...","description":"Run tests"}}],"stop_reason":null,"usage":{"input_tokens":4,"output_tokens":1}},"parent_tool_use_id":"toolu_00","session_id":"s1","uuid":"u2"}`
	lineUserText   = `{"type":"user","message":{"role":"user","content":"<local-command-stdout>Total cost: $0.01</local-command-stdout>"},"session_id":"s1","parent_tool_use_id":null}`
	lineUserResult = `{"type":"user","message":{"role":"user","content":[{"tool_use_id":"toolu_01","type":"tool_result","content":"ok","is_error":false}]},"parent_tool_use_id":null,"session_id":"s1"}`
	lineResult     = `{"type":"result","subtype":"success","is_error":false,"api_error_status":null,"duration_ms":5123,"duration_api_ms":4000,"num_turns":3,"result":"Done.","session_id":"s1","total_cost_usd":0.0421,"usage":{"input_tokens":10,"cache_creation_input_tokens":20,"cache_read_input_tokens":30,"output_tokens":40,"server_tool_use":{"web_search_requests":0},"service_tier":"standard"},"modelUsage":{},"permission_denials":[{"tool_name":"Bash","tool_use_id":"toolu_01","tool_input":{"command":"rm -rf build"}}],"uuid":"u3"}`
	lineResultErr  = `{"type":"result","subtype":"success","is_error":true,"api_error_status":529,"duration_ms":1,"num_turns":1,"result":"API Error: overloaded","session_id":"s2","total_cost_usd":0}`
	lineStream     = `{"type":"stream_event","event":{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}},"session_id":"s1","parent_tool_use_id":null,"uuid":"u4"}`
)

func TestParseLine(t *testing.T) {
	tests := []struct {
		name string
		line string
		want Event
	}{
		{"init", lineInit, Event{Type: "system", Subtype: "init", SessionID: "5f0c1c1e-1111-4a4a-9b9b-000000000001"}},
		{"api_retry", lineRetry, Event{Type: "system", Subtype: "api_retry", SessionID: "s1"}},
		{"text", lineText, Event{Type: "assistant", SessionID: "s1", Blocks: []Block{{Type: "text", Text: "Here is the fix for the failing test."}}}},
		{"tool_use", lineTool, Event{Type: "assistant", SessionID: "s1", ParentToolUseID: "toolu_00", Blocks: []Block{
			{Type: "thinking"},
			{Type: "tool_use", ToolName: "Bash", ToolUseID: "toolu_01", Input: json.RawMessage(`{"command":"go test ./...","description":"Run tests"}`)},
		}}},
		{"user string", lineUserText, Event{Type: "user", UserText: "<local-command-stdout>Total cost: $0.01</local-command-stdout>"}},
		{"user array", lineUserResult, Event{Type: "user"}},
		{"result", lineResult, Event{Type: "result", Subtype: "success", SessionID: "s1", Result: &Result{
			Text: "Done.", SessionID: "s1", TotalCostUSD: 0.0421,
			Usage:             Usage{InputTokens: 10, OutputTokens: 40, CacheCreationInputTokens: 20, CacheReadInputTokens: 30},
			PermissionDenials: []Denial{{ToolName: "Bash", ToolUseID: "toolu_01", ToolInput: json.RawMessage(`{"command":"rm -rf build"}`)}},
		}}},
		{"result error", lineResultErr, Event{Type: "result", Subtype: "success", SessionID: "s2", Result: &Result{
			IsError: true, APIErrorStatus: 529, Text: "API Error: overloaded", SessionID: "s2",
		}}},
		{"result status as string", `{"type":"result","api_error_status":"502","is_error":true}`, Event{Type: "result", Result: &Result{IsError: true, APIErrorStatus: 502}}},
		{"stream_event", lineStream, Event{Type: "stream_event"}},
		{"unknown type", `{"type":"rate_limit_event","session_id":"s","subtype":"x","message":{"content":"y"}}`, Event{Type: "rate_limit_event"}},
		{"surrounding space", " \t" + lineRetry + "\r\n", Event{Type: "system", Subtype: "api_retry", SessionID: "s1"}},
		{"field of unexpected type", `{"type":"result","total_cost_usd":"three","is_error":true,"result":"x"}`, Event{Type: "result", Result: &Result{IsError: true, Text: "x"}}},
		{"message not an object", `{"type":"assistant","message":"hi","session_id":"s"}`, Event{Type: "assistant", SessionID: "s"}},
		{"content not an array", `{"type":"assistant","message":{"content":{"a":1}}}`, Event{Type: "assistant"}},
		{"odd block", `{"type":"assistant","message":{"content":[1,{"type":"text","text":"ok"}]}}`, Event{Type: "assistant", Blocks: []Block{{}, {Type: "text", Text: "ok"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseLine([]byte(tc.line))
			if err != nil {
				t.Fatalf("ParseLine: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseLine:\n got %#v\nwant %#v", got, tc.want)
				if got.Result != nil && tc.want.Result != nil {
					t.Errorf("result:\n got %#v\nwant %#v", *got.Result, *tc.want.Result)
				}
			}
		})
	}
}

func TestParseLineErrors(t *testing.T) {
	for _, line := range []string{"", "   ", "not json", "[1,2]", `"str"`, "null", "42", "{", `{"type":"assistant"`, `{"type":"x"} trailing`, `{}`, `{"type":""}`, `{"type":7}`, `{"subtype":"init"}`} {
		ev, err := ParseLine([]byte(line))
		if err == nil {
			t.Errorf("ParseLine(%q) = %#v, want an error", line, ev)
		}
	}
	if _, err := ParseLine([]byte("[]")); !errors.Is(err, ErrNotObject) {
		t.Errorf("array: %v, want ErrNotObject", err)
	}
	if _, err := ParseLine([]byte(`{"uuid":"x"}`)); !errors.Is(err, ErrNoType) {
		t.Errorf("no type: %v, want ErrNoType", err)
	}
}

// The Event must not alias the caller's buffer, which the reader reuses.
func TestParseLineCopies(t *testing.T) {
	buf := []byte(lineTool + lineResult)
	a, err := ParseLine(buf[:len(lineTool)])
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseLine(buf[len(lineTool):])
	if err != nil {
		t.Fatal(err)
	}
	want := []string{a.Blocks[1].ToolName, string(a.Blocks[1].Input), r.Result.Text, string(r.Result.PermissionDenials[0].ToolInput)}
	for i := range buf {
		buf[i] = 'X'
	}
	got := []string{a.Blocks[1].ToolName, string(a.Blocks[1].Input), r.Result.Text, string(r.Result.PermissionDenials[0].ToolInput)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after overwriting the buffer: %q, want %q", got, want)
	}
}

var parseSeeds = []string{
	lineInit, lineRetry, lineText, lineTool, lineUserText, lineUserResult, lineResult, lineResultErr, lineStream,
	"", "not json", "[]", "{}", `{"type":null}`, `{"type":"result","api_error_status":"5x9"}`,
	`{"type":"result","api_error_status":-1,"usage":{"input_tokens":"x"},"permission_denials":{"a":1}}`,
	`{"type":"assistant","message":{"content":"str"}}`, `{"type":"user","message":{"content":"\u00e9\ud800"}}`,
	`{"type":"assistant","message":{"content":[{"type":"tool_use","input":12e999}]}}`,
	`{"type":"result","api_error_status":99999999999999999999}`,
}

func FuzzParseLine(f *testing.F) {
	for _, s := range parseSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		ev, err := ParseLine(line)
		if err != nil {
			return
		}
		if ev.Type == "" {
			t.Fatalf("no error and no type for %q", line)
		}
		if (ev.Result != nil) != (ev.Type == "result") {
			t.Fatalf("Result %v for type %q", ev.Result, ev.Type)
		}
		if ev.Type != "assistant" && ev.Blocks != nil {
			t.Fatalf("blocks on a %q line", ev.Type)
		}
	})
}

func BenchmarkParseLine(b *testing.B) {
	for _, bc := range []struct{ name, line string }{
		{"text", lineText},
		{"tool_use", lineTool},
		{"init", lineInit},
		{"result", lineResult},
		{"stream_event", lineStream},
		{"user_tool_result", lineUserResult},
	} {
		b.Run(bc.name, func(b *testing.B) {
			line := []byte(bc.line)
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseLine(line); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestParseLineDepthAndEscapes(t *testing.T) {
	nest := func(n int) []byte {
		return []byte(`{"type":"x","a":` + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + `}`)
	}
	if _, err := ParseLine(nest(10000)); err != nil {
		t.Errorf("depth 10000: %v", err)
	}
	if _, err := ParseLine(nest(10001)); err == nil {
		t.Errorf("depth 10001 accepted; encoding/json rejects it")
	}
	ev, err := ParseLine([]byte(`{"t\u0079pe":"user","message":{"content":"a\"b\u00e9\n"}}`))
	if err != nil || ev.Type != "user" || ev.UserText != "a\"bé\n" {
		t.Errorf("escapes: %#v %v", ev, err)
	}
	// Keys are case-sensitive (encoding/json's are not).
	if _, err := ParseLine([]byte(`{"Type":"user"}`)); !errors.Is(err, ErrNoType) {
		t.Errorf("Type: %v", err)
	}
}

// A key that differs from a known one only in case (or by a character
// that folds to the same letter, as U+017F does to S) is another key, at
// every level, wherever it stands.
func TestParseLineKeysAreExact(t *testing.T) {
	tests := []struct {
		name, line string
		want       Event
	}{
		{"type", `{"type":"result","Type":"user"}`, Event{Type: "result", Result: &Result{}}},
		{"result", `{"type":"result","result":"ok","Result":"forged","\u017fession_id":"x",` +
			`"usage":{"input_tokens":1,"Input_Tokens":99},"permission_denials":[{"tool_name":"Bash","Tool_Name":"x","TOOL_INPUT":[]}]}`,
			Event{Type: "result", Result: &Result{Text: "ok", Usage: Usage{InputTokens: 1}, PermissionDenials: []Denial{{ToolName: "Bash"}}}}},
		{"assistant", `{"type":"assistant","message":{"content":[{"type":"text","text":"real","Text":"forged","TYPE":"tool_use"}],"Content":"x"}}`,
			Event{Type: "assistant", Blocks: []Block{{Type: "text", Text: "real"}}}},
		{"user", `{"type":"user","message":{"CONTENT":"forged"}}`, Event{Type: "user"}},
	}
	for _, tc := range tests {
		got, err := ParseLine([]byte(tc.line))
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %#v %v\nwant %#v", tc.name, got, err, tc.want)
			if got.Result != nil {
				t.Errorf("result %#v", *got.Result)
			}
		}
	}
}

// assistantSeeds are lines near the edge of what parseAssistantText takes.
var assistantSeeds = []string{
	`{"type":"assistant","session_id":"s","message":{"role":"assistant","content":[{"type":"text","text":"1733000000000000000"}]}}`,
	` { "type" : "assistant" , "message" : { "content" : [ { "type" : "text" , "text" : "a" } , {"text":"b","type":"text"} ] } } `,
	`{"type":"assistant","message":{"content":[{"type":"text","text":"a\"b\u00e9\n\ud800"}]},"session_id":null,"parent_tool_use_id":"p"}`,
	"{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"a\xffb\"}]}}",
	`{"type":"assistant","message":{"content":[{"type":"text","text":"a","text":null,"Text":"x"}]},"session_id":"a","session_id":null}`,
	`{"type":"assistant","message":{"content":[{"type":"text"}]},"message":{"role":"x"}}`,
	`{"type":"assistant","message":{"role":"x"},"message":{"content":[{"type":"text","text":"a"}]}}`,
	`{"type":"assistant","message":{"content":[{"type":"text","text":"a"}],"content":[]}}`,
	`{"type":"assistant","type":"user","message":{"content":[{"type":"text","text":"a"}]}}`,
	`{"t\u0079pe":"user","type":"assistant","message":{"content":[{"type":"text","text":"a"}]}}`,
	`{"type":"assistant","message":{"content":[{"type":"text","text":"a"},{"type":"thinking","thinking":"b"}]}}`,
	`{"type":"assistant","message":{"content":[{"type":"text","text":"a"},7]}}`,
	`{"type":"assistant","message":{"content":[{"type":"text","text":1}]}}`,
	`{"type":"assistant","session_id":5,"message":{"content":[{"type":"text","text":"a"}]}}`,
	`{"type":"assistant","message":{"content":[]}}`,
	`{"type":"user","message":{"type":"assistant","content":[{"type":"text","text":"a"}]}}`,
	`[{"type":"assistant","message":{"content":[{"type":"text","text":"a"}]}}]`,
	`{"type":"assistant","message":{"content":[{"type":"text","text":"a"}]}} {}`,
}

// FuzzParseAssistantText: a line the fast path takes reads as it does with
// encoding/json.
func FuzzParseAssistantText(f *testing.F) {
	for _, s := range append(parseSeeds, assistantSeeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		got, ok := parseAssistantText(line)
		if !ok {
			return
		}
		want, err := decodeLine(line)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\nfast path %#v\nencoding/json %#v %v", line, got, want, err)
		}
	})
}

// The lines a streamed answer is made of cost what the event holds (the
// text, the session id, the block), not encoding/json's allocations.
func TestParseLineAllocs(t *testing.T) {
	for _, line := range []string{lineText, assistantSeeds[0]} {
		b := []byte(line)
		if n := testing.AllocsPerRun(100, func() { _, _ = ParseLine(b) }); n > 3 {
			t.Errorf("%d allocations for %s, want at most 3", int(n), line)
		}
	}
}
