// Package anthropicfake is a loopback stand-in of the Anthropic Messages API
// that speaks the real wire protocol, so the Claude Code CLI can run fully
// offline in tests and in the local demo. Its tests run the real CLI against
// it. NewBedrock is the same stand-in speaking Amazon Bedrock's protocol
// (SigV4-checked requests, eventstream answers), for the CLI's Bedrock mode.
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
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// Server is a running stand-in on a loopback port.
type Server struct {
	// URL is the base URL to give the CLI as ANTHROPIC_BASE_URL
	// (http://127.0.0.1:PORT, no trailing slash).
	URL string

	srv     *httptest.Server
	script  Script
	bedrock bool // speaks Amazon Bedrock's wire protocol (NewBedrock)
	closed  chan struct{}
	once    sync.Once

	mu       sync.Mutex
	requests []Request
	calls    []string
	usage    Usage
}

// Usage is the token usage the stand-in reported in its answers.
type Usage struct {
	InputTokens  int
	OutputTokens int
}

// Request is one model request the stand-in received, decoded: a POST
// /v1/messages, or in the Bedrock mode an invoke (Model and Stream then come
// from the path).
type Request struct {
	Query     string          // the raw query string, e.g. "beta=true"
	Model     string          // the model the CLI asked for
	MaxTokens int             // max_tokens
	Stream    bool            // "stream": true
	System    json.RawMessage // the system prompt: a string or an array of text blocks
	Messages  []Message       // the conversation, oldest first
	Tools     []string        // the names of the tools offered to the model
	Raw       json.RawMessage // the whole request body
	Header    http.Header     // the request's headers, as received
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
func New(script Script) *Server { return start(script, false) }

func start(script Script, bedrock bool) *Server {
	if script == nil {
		script = Say("OK.")
	}
	s := &Server{script: script, bedrock: bedrock, closed: make(chan struct{})}
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

// Usage returns the sum of the usage reported in every answer so far (the
// final counts of each message, whether or not its stream was finished).
func (s *Server) Usage() Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usage
}

// Requests returns every model request received so far, in order: POST
// /v1/messages, or in the Bedrock mode POST /model/{id}/invoke[-with-response-stream].
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

	if s.bedrock {
		s.serveBedrock(w, r)
		return
	}
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
	s.answer(w, r, newRequest(r, body, wr))
}

func newRequest(r *http.Request, body []byte, wr wireRequest) Request {
	req := Request{
		Query:     r.URL.RawQuery,
		Model:     wr.Model,
		MaxTokens: wr.MaxTokens,
		Stream:    wr.Stream,
		System:    wr.System,
		Messages:  wr.Messages,
		Raw:       json.RawMessage(body),
		Header:    r.Header.Clone(),
	}
	for _, t := range wr.Tools {
		req.Tools = append(req.Tools, t.Name)
	}
	return req
}

// answer records req and answers it with the script's reply, in the wire
// format of the stand-in's mode.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, req Request) {
	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.mu.Unlock()

	reply := s.script(req)
	if reply.Delay > 0 && !s.wait(r, reply.Delay) {
		return
	}
	if reply.Status != 0 && reply.Status != http.StatusOK {
		if s.bedrock {
			writeBedrockError(w, reply.Status, reply.ErrorMessage)
			return
		}
		typ := errorType(reply.Status)
		msg := reply.ErrorMessage
		if msg == "" {
			msg = defaultErrorMessage(typ)
		}
		writeError(w, reply.Status, typ, msg)
		return
	}

	msg := buildMessage(req, reply)
	s.mu.Lock()
	s.usage.InputTokens += msg.Usage.InputTokens
	s.usage.OutputTokens += msg.Usage.OutputTokens
	s.mu.Unlock()
	if !req.Stream {
		if reply.Hang {
			s.wait(r, -1)
			return
		}
		writeJSON(w, http.StatusOK, msg)
		return
	}
	if s.bedrock {
		s.streamBedrock(w, r, msg, reply)
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
