package anthropicfake

// Wire-level tests of the stand-in itself, with plain net/http (no CLI).

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

type sseEvent struct {
	name string
	data map[string]any
}

func post(t *testing.T, s *Server, path, body string) *http.Response {
	t.Helper()
	resp, err := http.Post(s.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// readSSE parses the whole stream, checking the framing: every event is
// exactly "event: <name>\ndata: <json>\n\n" and the name matches data.type.
func readSSE(t *testing.T, r io.Reader) []sseEvent {
	t.Helper()
	raw, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	if !strings.HasSuffix(text, "\n\n") {
		t.Fatalf("stream does not end with a blank line: %q", text)
	}
	var out []sseEvent
	for _, frame := range strings.Split(strings.TrimSuffix(text, "\n\n"), "\n\n") {
		lines := strings.Split(frame, "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "event: ") || !strings.HasPrefix(lines[1], "data: ") {
			t.Fatalf("bad frame %q", frame)
		}
		ev := sseEvent{name: strings.TrimPrefix(lines[0], "event: ")}
		if err := json.Unmarshal([]byte(strings.TrimPrefix(lines[1], "data: ")), &ev.data); err != nil {
			t.Fatalf("frame %q: %v", frame, err)
		}
		if ev.data["type"] != ev.name {
			t.Fatalf("event %s carries type %v", ev.name, ev.data["type"])
		}
		out = append(out, ev)
	}
	return out
}

const userHi = `{"model":"claude-test","max_tokens":100,"stream":%s,"messages":[{"role":"user","content":"hi"}],"tools":[{"name":"Bash"},{"name":"Read"}]}`

func body(stream bool) string {
	if stream {
		return strings.Replace(userHi, "%s", "true", 1)
	}
	return strings.Replace(userHi, "%s", "false", 1)
}

func TestWireStream(t *testing.T) {
	s := New(func(Request) Reply {
		return Reply{Blocks: []ReplyBlock{Text("Hello there world."), ToolUse("Bash", map[string]string{"command": "ls"})}}
	})
	defer s.Close()
	resp := post(t, s, "/v1/messages?beta=true", body(true))
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := readSSE(t, resp.Body)

	var names []string
	text := ""
	var toolJSON strings.Builder
	var toolStart map[string]any
	for _, ev := range events {
		if ev.name != "content_block_delta" || len(names) == 0 || names[len(names)-1] != "content_block_delta" {
			names = append(names, ev.name)
		}
		switch ev.name {
		case "content_block_start":
			if cb := ev.data["content_block"].(map[string]any); cb["type"] == "tool_use" {
				toolStart = cb
			}
		case "content_block_delta":
			d := ev.data["delta"].(map[string]any)
			switch d["type"] {
			case "text_delta":
				text += d["text"].(string)
			case "input_json_delta":
				toolJSON.WriteString(d["partial_json"].(string))
			}
		}
	}
	want := []string{"message_start", "ping",
		"content_block_start", "content_block_delta", "content_block_stop",
		"content_block_start", "content_block_delta", "content_block_stop",
		"message_delta", "message_stop"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("events %v, want %v", names, want)
	}
	if text != "Hello there world." {
		t.Errorf("text deltas = %q", text)
	}
	if toolStart["name"] != "Bash" || !strings.HasPrefix(toolStart["id"].(string), "toolu_") {
		t.Errorf("tool_use start = %v", toolStart)
	}
	if toolJSON.String() != `{"command":"ls"}` {
		t.Errorf("input_json_delta concatenated = %q", toolJSON.String())
	}
	start := events[0].data["message"].(map[string]any)
	if start["model"] != "claude-test" || start["role"] != "assistant" {
		t.Errorf("message_start = %v", start)
	}
	md := events[len(events)-2].data
	if md["delta"].(map[string]any)["stop_reason"] != "tool_use" {
		t.Errorf("message_delta = %v", md)
	}
	u := md["usage"].(map[string]any)
	if u["input_tokens"].(float64) <= 0 || u["output_tokens"].(float64) <= 0 {
		t.Errorf("usage = %v", u)
	}

	reqs := s.Requests()
	if len(reqs) != 1 || reqs[0].Model != "claude-test" || !reqs[0].Stream ||
		strings.Join(reqs[0].Tools, ",") != "Bash,Read" || reqs[0].Prompt() != "hi" {
		t.Errorf("recorded %+v", reqs)
	}
}

func TestWireNonStreaming(t *testing.T) {
	s := New(Say("Plain answer."))
	defer s.Close()
	resp := post(t, s, "/v1/messages", body(false))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var m struct {
		Type       string `json:"type"`
		Role       string `json:"role"`
		StopReason string `json:"stop_reason"`
		Content    []struct{ Type, Text string }
		Usage      struct {
			InputTokens  int `json:"input_tokens"`
			OutputTokens int `json:"output_tokens"`
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	if m.Type != "message" || m.Role != "assistant" || m.StopReason != "end_turn" ||
		len(m.Content) != 1 || m.Content[0].Text != "Plain answer." || m.Usage.InputTokens == 0 || m.Usage.OutputTokens == 0 {
		t.Errorf("message = %+v", m)
	}
}

func TestWireErrors(t *testing.T) {
	for status, typ := range map[int]string{400: "invalid_request_error", 429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"} {
		s := New(func(Request) Reply { return Reply{Status: status} })
		resp := post(t, s, "/v1/messages?beta=true", body(true))
		var e struct {
			Type  string
			Error struct{ Type, Message string }
		}
		json.NewDecoder(resp.Body).Decode(&e)
		if resp.StatusCode != status || e.Type != "error" || e.Error.Type != typ || e.Error.Message == "" {
			t.Errorf("%d: got %d %+v", status, resp.StatusCode, e)
		}
		s.Close()
	}
}

func TestWireOtherEndpoints(t *testing.T) {
	s := New(Say("OK."))
	defer s.Close()
	req, _ := http.NewRequest(http.MethodHead, s.URL+"/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("HEAD / = %v, %v", resp, err)
	}
	if resp := post(t, s, "/v1/nothing", "{}"); resp.StatusCode != 404 {
		t.Errorf("unknown path = %d", resp.StatusCode)
	}
	if resp := post(t, s, "/v1/messages", "not json"); resp.StatusCode != 400 {
		t.Errorf("bad JSON = %d", resp.StatusCode)
	}
	if got := strings.Join(s.Calls(), "|"); got != "HEAD /|POST /v1/nothing|POST /v1/messages" {
		t.Errorf("calls = %s", got)
	}
	if n := len(s.Requests()); n != 0 {
		t.Errorf("requests recorded = %d, want 0 (bad bodies are not messages)", n)
	}
}

// TestWireHang: a hanging reply streams its blocks, then nothing, until
// Close, which does not wait for it; message_stop is never sent.
func TestWireHang(t *testing.T) {
	s := New(func(Request) Reply { return Reply{Blocks: []ReplyBlock{Text("stuck")}, Hang: true} })
	resp := post(t, s, "/v1/messages", body(true))
	br := bufio.NewReader(resp.Body)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("the stream ended before the block: %v", err)
		}
		if strings.HasPrefix(line, "event: content_block_stop") {
			break
		}
	}
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked on a hanging response")
	}
	if rest, _ := io.ReadAll(br); strings.Contains(string(rest), "message_stop") {
		t.Errorf("Hang sent message_stop: %q", rest)
	}
}

func TestMessageHelpers(t *testing.T) {
	reminder := `{"type":"text","text":"<system-reminder>\nctx\n</system-reminder>\n"}`
	r := Request{Messages: []Message{
		{Role: "user", Content: json.RawMessage(`"plain string"`)},
		{Role: "assistant", Content: json.RawMessage(`[{"type":"text","text":"A"},{"type":"tool_use","id":"t1","name":"Bash","input":{"command":"ls"}}]`)},
		{Role: "user", Content: json.RawMessage(`[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"out"}]}]`)},
	}}
	if got := r.Messages[0].Text(); got != "plain string" {
		t.Errorf("string content Text = %q", got)
	}
	if got := r.Messages[1].Text(); got != "A" {
		t.Errorf("assistant Text = %q", got)
	}
	last, _ := r.LastUser()
	if tr := last.ToolResults(); len(tr) != 1 || tr[0].ResultText() != "out" || r.Prompt() != "" {
		t.Errorf("tool results %+v, prompt %q", tr, r.Prompt())
	}
	r2 := Request{Messages: []Message{{Role: "user", Content: json.RawMessage(`[` + reminder + `,{"type":"text","text":"the prompt"}]`)}}}
	if r2.Prompt() != "the prompt" || !strings.Contains(r2.Messages[0].Text(), "the prompt") {
		t.Errorf("Prompt = %q, Text = %q", r2.Prompt(), r2.Messages[0].Text())
	}
}

func TestDemoScript(t *testing.T) {
	d := Demo()
	user := func(s string) Message {
		raw, _ := json.Marshal(s)
		return Message{Role: "user", Content: raw}
	}
	fresh := d(Request{Tools: []string{"Bash", "Read"}, Messages: []Message{user("what is here?")}})
	if len(fresh.Blocks) != 2 || fresh.Blocks[1].ToolName != "Bash" {
		t.Errorf("fresh prompt reply = %+v", fresh)
	}
	if title := d(Request{Tools: []string{"Bash"}, Messages: []Message{user("Give a 3-6 word Title.")}}); len(title.Blocks) != 1 || title.Blocks[0].Text != DemoTitle {
		t.Errorf("title reply = %+v", title)
	}
	after := d(Request{Messages: []Message{
		user("what is here?"),
		{Role: "user", Content: json.RawMessage(`[{"type":"tool_result","tool_use_id":"x","content":"README.md"}]`)},
	}})
	if len(after.Blocks) != 1 || !strings.Contains(after.Blocks[0].Text, "README.md") {
		t.Errorf("summary = %+v", after)
	}
}
