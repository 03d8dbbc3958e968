// Package anthropicfake is a loopback stand-in of the Anthropic Messages API
// that speaks the real wire protocol, so the Claude Code CLI can run fully
// offline in tests and in the local demo. Its tests run the real CLI against
// it.
//
// Facts measured with the pinned CLI (2.1.197) against this stand-in, with
// the explicit environment the service uses (see cli_test.go):
//
//   - Traffic: one HEAD / per run (even one that then fails), then POST
//     /v1/messages?beta=true with "stream": true per model call. No
//     count_tokens and no non-streaming call was seen. The title run
//     (-p <prompt> --output-format text) is a full agent run: the same
//     streaming request with all tools; stdout is the final text and "\n".
//   - Requests: model "claude-opus-4-8" (system/init says
//     "claude-opus-4-8[1m]" on a new session, "claude-opus-4-8" on a resumed
//     one), max_tokens 64000, 24 tools. The first user message starts with a
//     <system-reminder> text block (the date) before the prompt, and the
//     messages also hold one with role "system" (the list of agent types).
//     Request.Prompt drops the reminders.
//   - Tools: this version offers no Glob, Grep or LS (a call gets the error
//     tool result "No such tool available: Glob. … find files with `find`
//     via the Bash tool"). In the default permission mode Read and read-only
//     Bash commands (ls, ls -la ., find . -maxdepth 1) run without approval;
//     Bash with an output redirect and Write are denied, the model gets an
//     is_error tool_result, and result.permission_denials lists them (exit
//     0). The denial's tool_input is not always what the model sent: Write's
//     file_path comes back absolute. --allowedTools accepts "Bash,Write" and
//     "Write Bash" alike.
//   - Assistant lines: one per content block, printed at content_block_stop
//     (before message_stop). If the stream then stalls the CLI prints
//     nothing more and does not exit, even with API_TIMEOUT_MS=1000: the
//     service needs its own idle deadline.
//   - Cost: total_cost_usd is computed from the returned usage at the
//     model's price; this stand-in's estimate (~19k input tokens for a first
//     turn) gives about $0.10 a call.
//   - Sessions: $CLAUDE_CONFIG_DIR/projects/<cwd with every character other
//     than A-Z, a-z, 0-9 replaced by '-'>/<session_id>.jsonl (".claude.json"
//     and "backups/" also land in CLAUDE_CONFIG_DIR). --resume <id> keeps the
//     same session id and resends the earlier user and assistant messages.
//     Resuming a missing session: exit 1, no system/init, a result line with
//     subtype "error_during_execution", is_error true and errors[], stderr
//     "No conversation found with session ID: <id>", no model call.
//   - API errors with CLAUDE_CODE_MAX_RETRIES=0: a 500 or 529 ends the run
//     in ~0.6 s with exit 1, an assistant line from model "<synthetic>"
//     holding the error text, and a result whose subtype is still "success"
//     but with is_error true, api_error_status = the HTTP status and
//     total_cost_usd 0. The text of a 5xx/529 names the base URL's host and
//     port ("… check your inference gateway (<host:port>)"); a 400 reads
//     "API Error: 400 <message>", a 429 "API Error: Request rejected (429) ·
//     <message>". With one retry the CLI first prints a system/api_retry line
//     (attempt, max_retries, retry_delay_ms ≈ 500, error_status, error) and
//     fails after ~1.2 s.
//   - stderr stays empty on success and on API errors.
//   - Timing on a 2-core machine: spawn to system/init 0.5–0.85 s; a whole
//     text turn 0.55–0.9 s; a tool round trip ~0.7 s.
package anthropicfake

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Server is a running stand-in on a loopback port.
type Server struct {
	// URL is the base URL to give the CLI as ANTHROPIC_BASE_URL
	// (http://127.0.0.1:PORT, no trailing slash).
	URL string

	srv    *httptest.Server
	script Script
	closed chan struct{}
	once   sync.Once

	mu       sync.Mutex
	requests []Request
	calls    []string
}

// Request is one POST /v1/messages the stand-in received, decoded.
type Request struct {
	Query     string          // the raw query string, e.g. "beta=true"
	Model     string          // the model the CLI asked for
	MaxTokens int             // max_tokens
	Stream    bool            // "stream": true
	System    json.RawMessage // the system prompt: a string or an array of text blocks
	Messages  []Message       // the conversation, oldest first
	Tools     []string        // the names of the tools offered to the model
	Raw       json.RawMessage // the whole request body
}

// Message is one message of a request's conversation.
type Message struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"` // a string or an array of content blocks
}

// Block is one content block of a Message, decoded loosely.
type Block struct {
	Type      string          `json:"type"` // text, tool_use, tool_result, thinking, image, ...
	Text      string          `json:"text,omitempty"`
	ID        string          `json:"id,omitempty"`          // tool_use
	Name      string          `json:"name,omitempty"`        // tool_use
	Input     json.RawMessage `json:"input,omitempty"`       // tool_use
	ToolUseID string          `json:"tool_use_id,omitempty"` // tool_result
	Content   json.RawMessage `json:"content,omitempty"`     // tool_result: a string or an array of blocks
	IsError   bool            `json:"is_error,omitempty"`    // tool_result
}

// Script decides the reply to each request. It may be called concurrently.
type Script func(r Request) Reply

// Reply is what the stand-in answers to one request.
type Reply struct {
	// Status other than 0 or 200 answers with an Anthropic-style JSON error:
	// 400 invalid_request_error, 401 authentication_error, 403
	// permission_error, 404 not_found_error, 413 request_too_large, 429
	// rate_limit_error, 529 overloaded_error, other 5xx api_error.
	Status int
	// ErrorMessage is the error's message (a default when empty).
	ErrorMessage string

	// Blocks are the content blocks of the answer, in order.
	Blocks []ReplyBlock
	// StopReason defaults to tool_use if any block is a tool_use, else
	// end_turn.
	StopReason string

	// Delay is waited before the first byte of the response.
	Delay time.Duration
	// ChunkDelay is waited between text deltas (a text block is streamed in
	// word-sized deltas).
	ChunkDelay time.Duration
	// Hang streams message_start and the blocks, then never finishes the
	// message (no message_delta/message_stop): a stalled stream. The handler
	// returns when the client goes away or the server is closed.
	Hang bool
}

// ReplyBlock is a text block (Text) or a tool_use block (ToolName set).
type ReplyBlock struct {
	Text     string
	ToolName string
	ToolID   string // generated when empty
	Input    any    // the tool input, marshalled to JSON; nil means {}
}

// Text is a text block.
func Text(s string) ReplyBlock { return ReplyBlock{Text: s} }

// ToolUse is a tool_use block calling the named tool with input.
func ToolUse(name string, input any) ReplyBlock {
	return ReplyBlock{ToolName: name, Input: input}
}

// New starts a stand-in on 127.0.0.1 answering with script. A nil script
// answers "OK." to everything.
func New(script Script) *Server {
	if script == nil {
		script = Say("OK.")
	}
	s := &Server{script: script, closed: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.URL = s.srv.URL
	return s
}

// Close stops the server, ending hanging and delayed responses first.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closed)
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
}

// Requests returns every POST /v1/messages received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Calls returns "METHOD /path" for every HTTP request received so far
// (including HEAD / and count_tokens), in order.
func (s *Server) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.calls = append(s.calls, r.Method+" "+r.URL.Path)
	s.mu.Unlock()

	switch {
	case r.URL.Path == "/" && (r.Method == http.MethodHead || r.Method == http.MethodGet):
		w.WriteHeader(http.StatusOK)
	case r.URL.Path == "/v1/messages" && r.Method == http.MethodPost:
		s.messages(w, r)
	case r.URL.Path == "/v1/messages/count_tokens" && r.Method == http.MethodPost:
		body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<20))
		writeJSON(w, http.StatusOK, map[string]int{"input_tokens": estimateTokens(len(body))})
	default:
		writeError(w, http.StatusNotFound, "not_found_error", "Not found: "+r.Method+" "+r.URL.Path)
	}
}

// wireRequest is the part of a Messages API request the stand-in decodes.
type wireRequest struct {
	Model     string          `json:"model"`
	MaxTokens int             `json:"max_tokens"`
	Stream    bool            `json:"stream"`
	System    json.RawMessage `json:"system"`
	Messages  []Message       `json:"messages"`
	Tools     []struct {
		Name string `json:"name"`
	} `json:"tools"`
}

func (s *Server) messages(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "cannot read body")
		return
	}
	var wr wireRequest
	if err := json.Unmarshal(body, &wr); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid JSON body: "+err.Error())
		return
	}
	req := Request{
		Query:     r.URL.RawQuery,
		Model:     wr.Model,
		MaxTokens: wr.MaxTokens,
		Stream:    wr.Stream,
		System:    wr.System,
		Messages:  wr.Messages,
		Raw:       json.RawMessage(body),
	}
	for _, t := range wr.Tools {
		req.Tools = append(req.Tools, t.Name)
	}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.mu.Unlock()

	reply := s.script(req)
	if reply.Delay > 0 && !s.wait(r, reply.Delay) {
		return
	}
	if reply.Status != 0 && reply.Status != http.StatusOK {
		typ := errorType(reply.Status)
		msg := reply.ErrorMessage
		if msg == "" {
			msg = defaultErrorMessage(typ)
		}
		writeError(w, reply.Status, typ, msg)
		return
	}

	msg := buildMessage(req, reply)
	if !req.Stream {
		if reply.Hang {
			s.wait(r, -1)
			return
		}
		writeJSON(w, http.StatusOK, msg)
		return
	}
	s.stream(w, r, msg, reply)
}

// wait sleeps d (forever if d < 0) unless the client goes away or the server
// closes; it reports whether the full time passed.
func (s *Server) wait(r *http.Request, d time.Duration) bool {
	var timer <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-timer:
		return true
	case <-r.Context().Done():
	case <-s.closed:
	}
	return false
}

// message is a complete Messages API response.
type message struct {
	ID           string         `json:"id"`
	Type         string         `json:"type"`
	Role         string         `json:"role"`
	Model        string         `json:"model"`
	Content      []contentBlock `json:"content"`
	StopReason   *string        `json:"stop_reason"`
	StopSequence *string        `json:"stop_sequence"`
	Usage        usage          `json:"usage"`
}

type contentBlock struct {
	Type  string          `json:"type"`
	Text  *string         `json:"text,omitempty"`
	ID    string          `json:"id,omitempty"`
	Name  string          `json:"name,omitempty"`
	Input json.RawMessage `json:"input,omitempty"`
}

type usage struct {
	InputTokens              int `json:"input_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
	OutputTokens             int `json:"output_tokens"`
}

func buildMessage(req Request, reply Reply) message {
	model := req.Model
	if model == "" {
		model = "claude-sonnet-4-5"
	}
	m := message{
		ID:      "msg_" + randomID(),
		Type:    "message",
		Role:    "assistant",
		Model:   model,
		Content: []contentBlock{},
	}
	hasTool := false
	outChars := 0
	for _, b := range reply.Blocks {
		if b.ToolName != "" {
			hasTool = true
			id := b.ToolID
			if id == "" {
				id = "toolu_" + randomID()
			}
			input := json.RawMessage("{}")
			if b.Input != nil {
				raw, err := json.Marshal(b.Input)
				if err != nil {
					panic(fmt.Sprintf("anthropicfake: tool input of %s: %v", b.ToolName, err))
				}
				input = raw
			}
			outChars += len(input) + len(b.ToolName)
			m.Content = append(m.Content, contentBlock{Type: "tool_use", ID: id, Name: b.ToolName, Input: input})
			continue
		}
		text := b.Text
		outChars += len(text)
		m.Content = append(m.Content, contentBlock{Type: "text", Text: &text})
	}
	stop := reply.StopReason
	if stop == "" {
		stop = "end_turn"
		if hasTool {
			stop = "tool_use"
		}
	}
	m.StopReason = &stop
	m.Usage = usage{InputTokens: estimateTokens(len(req.Raw)), OutputTokens: estimateTokens(outChars)}
	return m
}

func (s *Server) stream(w http.ResponseWriter, r *http.Request, m message, reply Reply) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("request-id", "req_"+randomID())
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	send := func(event string, data any) bool {
		raw, err := json.Marshal(data)
		if err != nil {
			panic(fmt.Sprintf("anthropicfake: encode %s: %v", event, err))
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, raw); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return r.Context().Err() == nil
	}

	start := m
	start.Content = []contentBlock{}
	start.StopReason = nil
	start.Usage.OutputTokens = 1
	if !send("message_start", map[string]any{"type": "message_start", "message": start}) {
		return
	}
	if !send("ping", map[string]string{"type": "ping"}) {
		return
	}
	for i, b := range m.Content {
		switch b.Type {
		case "text":
			empty := ""
			if !send("content_block_start", map[string]any{
				"type": "content_block_start", "index": i,
				"content_block": contentBlock{Type: "text", Text: &empty},
			}) {
				return
			}
			for j, piece := range splitText(*b.Text) {
				if j > 0 && reply.ChunkDelay > 0 && !s.wait(r, reply.ChunkDelay) {
					return
				}
				if !send("content_block_delta", map[string]any{
					"type": "content_block_delta", "index": i,
					"delta": map[string]string{"type": "text_delta", "text": piece},
				}) {
					return
				}
			}
		case "tool_use":
			if !send("content_block_start", map[string]any{
				"type": "content_block_start", "index": i,
				"content_block": contentBlock{Type: "tool_use", ID: b.ID, Name: b.Name, Input: json.RawMessage("{}")},
			}) {
				return
			}
			// The real API streams the input as JSON fragments; send it in
			// two pieces so a client must concatenate them.
			in := string(b.Input)
			half := len(in) / 2
			for _, piece := range []string{in[:half], in[half:]} {
				if !send("content_block_delta", map[string]any{
					"type": "content_block_delta", "index": i,
					"delta": map[string]string{"type": "input_json_delta", "partial_json": piece},
				}) {
					return
				}
			}
		}
		if !send("content_block_stop", map[string]any{"type": "content_block_stop", "index": i}) {
			return
		}
	}
	if reply.Hang {
		s.wait(r, -1)
		return
	}
	if !send("message_delta", map[string]any{
		"type":  "message_delta",
		"delta": map[string]any{"stop_reason": *m.StopReason, "stop_sequence": nil},
		"usage": map[string]int{
			"input_tokens":                m.Usage.InputTokens,
			"cache_creation_input_tokens": 0,
			"cache_read_input_tokens":     0,
			"output_tokens":               m.Usage.OutputTokens,
		},
	}) {
		return
	}
	send("message_stop", map[string]string{"type": "message_stop"})
}

// splitText cuts s into word-sized deltas (each keeps its trailing space), so
// a streamed text arrives in several text_delta events.
func splitText(s string) []string {
	if s == "" {
		return []string{""}
	}
	var out []string
	for len(s) > 0 {
		i := strings.IndexByte(s, ' ')
		if i < 0 {
			out = append(out, s)
			break
		}
		out = append(out, s[:i+1])
		s = s[i+1:]
	}
	return out
}

func errorType(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request_error"
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case 529:
		return "overloaded_error"
	default:
		return "api_error"
	}
}

func defaultErrorMessage(typ string) string {
	switch typ {
	case "overloaded_error":
		return "Overloaded"
	case "rate_limit_error":
		return "Rate limited"
	case "api_error":
		return "Internal server error"
	default:
		return "Request failed"
	}
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("request-id", "req_"+randomID())
	writeJSON(w, status, map[string]any{
		"type":  "error",
		"error": map[string]string{"type": typ, "message": msg},
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		panic(fmt.Sprintf("anthropicfake: encode response: %v", err))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// estimateTokens turns a byte count into a plausible non-zero token count.
func estimateTokens(n int) int { return n/4 + 1 }

// randomID looks like the tail of an API id (msg_01…, toolu_01…).
func randomID() string {
	var b [12]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return "01" + hex.EncodeToString(b[:])
}
