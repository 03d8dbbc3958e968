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
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
)

// Server is a running stand-in on a loopback port.
type Server struct {
	// URL is the base URL to give the CLI as ANTHROPIC_BASE_URL
	// (http://127.0.0.1:PORT, no trailing slash).
	URL string

	srv     *httptest.Server
	stop    context.CancelFunc // ends the requests in flight, hanging ones too
	script  Script
	bedrock bool // speaks Amazon Bedrock's wire protocol (NewBedrock)

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

// Request is one model request the stand-in received, decoded. In the
// Bedrock mode Model and Stream come from the path.
type Request struct {
	Model    string          `json:"model"`
	Stream   bool            `json:"stream"`
	Messages []Message       `json:"messages"` // oldest first
	Tools    []string        `json:"-"`        // the names of the tools offered to the model
	Raw      json.RawMessage `json:"-"`        // the whole request body
	Header   http.Header     `json:"-"`
}

// Message is one message of a request's conversation.
type Message struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"` // a string or an array of content blocks
}

// Block is one content block of a Message, decoded loosely.
type Block struct {
	Type      string          `json:"type"`
	Text      string          `json:"text,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"` // tool_result
	Content   json.RawMessage `json:"content,omitempty"`     // tool_result: a string or an array of blocks
	IsError   bool            `json:"is_error,omitempty"`    // tool_result
}

// Script decides the reply to each request. It may be called concurrently.
type Script func(r Request) Reply

// Reply is what the stand-in answers to one request.
type Reply struct {
	// Status other than 0 or 200 answers with the API's JSON error of that
	// status.
	Status int
	Blocks []ReplyBlock
	// Hang stalls the stream after the blocks, before message_delta, until
	// the client goes away or the server is closed.
	Hang bool
}

// ReplyBlock is a text block (Text) or a tool_use block (ToolName set).
type ReplyBlock struct {
	Text     string
	ToolName string
	Input    any // the tool input, marshalled to JSON; nil means {}
}

// Text is a text block.
func Text(s string) ReplyBlock { return ReplyBlock{Text: s} }

// ToolUse is a tool_use block calling the named tool with input.
func ToolUse(name string, input any) ReplyBlock {
	return ReplyBlock{ToolName: name, Input: input}
}

// New starts a stand-in on 127.0.0.1 answering with script.
func New(script Script) *Server { return start(script, false) }

func start(script Script, bedrock bool) *Server {
	// httptest's Close waits for the requests in flight, and a hanging
	// stream only ends when its context does.
	ctx, stop := context.WithCancel(context.Background())
	s := &Server{script: script, bedrock: bedrock, stop: stop}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	s.srv.Config.BaseContext = func(net.Listener) context.Context { return ctx }
	s.srv.Start()
	s.URL = s.srv.URL
	return s
}

// Close stops the server, ending hanging responses first.
func (s *Server) Close() {
	s.stop()
	s.srv.Close()
}

// Usage returns the sum of the usage reported in every answer so far (the
// final counts of each message, whether or not its stream was finished).
func (s *Server) Usage() Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usage
}

// Requests returns every model request received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Calls returns "METHOD /path" for every HTTP request received so far, in
// order.
func (s *Server) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.calls = append(s.calls, r.Method+" "+r.URL.Path)
	s.mu.Unlock()
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	switch {
	case err != nil:
		s.fail(w, http.StatusBadRequest, "cannot read body")
	case s.bedrock:
		s.serveBedrock(w, r, body)
	case r.URL.Path == "/" && (r.Method == http.MethodHead || r.Method == http.MethodGet):
	case r.URL.Path == "/v1/messages" && r.Method == http.MethodPost:
		s.answer(w, r, body, "", false)
	default:
		s.fail(w, http.StatusNotFound, "Not found: "+r.Method+" "+r.URL.Path)
	}
}

// answer records the request in body and answers it with the script's
// reply. Bedrock names the model and the streaming in the path.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, body []byte, model string, stream bool) {
	req := Request{Raw: body, Header: r.Header.Clone()}
	wire := struct {
		*Request
		Tools []struct{ Name string } `json:"tools"`
	}{Request: &req}
	if err := json.Unmarshal(body, &wire); err != nil {
		s.fail(w, http.StatusBadRequest, "invalid JSON body: "+err.Error())
		return
	}
	if s.bedrock {
		req.Model, req.Stream = model, stream
	}
	for _, t := range wire.Tools {
		req.Tools = append(req.Tools, t.Name)
	}
	reply := s.script(req)
	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.mu.Unlock()
	if reply.Status != 0 && reply.Status != http.StatusOK {
		s.fail(w, reply.Status, "")
		return
	}
	m := newMessage(req, reply)
	s.mu.Lock()
	s.usage.InputTokens += m.in
	s.usage.OutputTokens += m.out
	s.mu.Unlock()
	if req.Stream {
		s.stream(w, r, m, reply.Hang)
	} else {
		writeJSON(w, http.StatusOK, m.json(m.content, m.stop, m.out))
	}
}

var apiErrorTypes = map[int]string{
	400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
	404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 529: "overloaded_error",
}

// fail answers with the error body of the stand-in's mode.
func (s *Server) fail(w http.ResponseWriter, status int, msg string) {
	msg = cmp.Or(msg, http.StatusText(status), "Overloaded")
	if s.bedrock {
		amzError(w, status, cmp.Or(bedrockErrorTypes[status], "InternalServerException"), msg)
		return
	}
	w.Header().Set("request-id", "req_"+randomID())
	writeJSON(w, status, map[string]any{
		"type":  "error",
		"error": map[string]string{"type": cmp.Or(apiErrorTypes[status], "api_error"), "message": msg},
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(mustJSON(v), '\n'))
}

// mustJSON encodes what the stand-in built or a test scripted: a value
// that cannot be encoded is a bug of the test.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("anthropicfake: " + err.Error())
	}
	return b
}

// estimateTokens turns a byte count into a plausible non-zero token count.
func estimateTokens(n int) int { return n/4 + 1 }

// randomID looks like the tail of an API id (msg_01…, toolu_01…).
func randomID() string {
	var b [12]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return "01" + hex.EncodeToString(b[:])
}
