package claude

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// A run with Options.Asks speaks the control protocol of Anthropic's Agent
// SDKs on its stdio (--permission-prompt-tool stdio): for each tool call
// outside AllowedTools the CLI writes a can_use_tool control request on
// stdout and waits for the control response on stdin. stdin is stream-json
// then: the prompt as a user message, then the answers; it stays open until
// the result line, after which the CLI has nothing more to ask.

// Ask is a tool call the CLI asks the caller to allow (Event.Ask).
type Ask struct {
	RequestID string // the control request's id, for Answer
	ToolName  string
	ToolUseID string
	Input     json.RawMessage // the tool's input, as the model gave it
}

// ErrNotAsked is Answer's error for a request the run has not asked, or
// has had answered.
var ErrNotAsked = errors.New("claude: no such request waits for an answer")

// Bounds of what one run may ask: a CLI gone wrong (or output forged past
// the vetter) must not flood the user's phone and the table. Past them, a
// request is denied at once.
const (
	maxOpenAsks = 8
	maxAsks     = 100
	msgTooMany  = "Too many tool calls wait for the user's approval in this turn, so this one was not run."
)

// asks is what a run keeps of its open requests. The reader goroutine adds
// one before delivering its Ask; Answer removes it.
type asks struct {
	mu       sync.Mutex
	open     map[string]json.RawMessage // request id → the input an allow hands back
	total    int                        // requests delivered, for maxAsks
	answered time.Time                  // the last answer: the CLI's silence before it was a person's
	closed   bool                       // stdin is closed: no more answers
}

// waiting reports whether the CLI's silence is a person's: a request is
// open, or was answered less than idle ago.
func (a *asks) waiting(idle time.Duration) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.open) > 0 || time.Since(a.answered) < idle
}

// Answer answers an Ask of the run: allow runs the tool with its input as
// asked, a denial gives the model message instead of the tool's result.
// It fails with ErrNotAsked for a request not open, and when the CLI no
// longer reads its stdin.
func (r *Run) Answer(requestID string, allow bool, message string) error {
	r.asks.mu.Lock()
	input, ok := r.asks.open[requestID]
	if !ok || r.asks.closed {
		r.asks.mu.Unlock()
		return ErrNotAsked
	}
	delete(r.asks.open, requestID)
	r.asks.answered = time.Now()
	r.asks.mu.Unlock()

	answer := map[string]any{"behavior": "deny", "message": message}
	if allow {
		if !json.Valid(input) {
			input = json.RawMessage("{}")
		}
		answer = map[string]any{"behavior": "allow", "updatedInput": input}
	}
	return r.writeInput(map[string]any{"type": "control_response", "response": map[string]any{
		"subtype": "success", "request_id": requestID, "response": answer}})
}

// asked takes a control request of a run that asks: a tool's is kept for
// Answer and delivered (it reports true); any other is refused, and one
// past the bounds denied.
func (r *Run) asked(ev Event) bool {
	if ev.Subtype != "can_use_tool" {
		r.refuse(ev.Ask.RequestID, ev.Subtype)
		return false
	}
	switch r.asks.add(*ev.Ask) {
	case askTaken:
		return true
	case askTooMany:
		_ = r.writeInput(map[string]any{"type": "control_response", "response": map[string]any{
			"subtype": "success", "request_id": ev.Ask.RequestID, "response": map[string]any{"behavior": "deny", "message": msgTooMany}}})
	}
	return false
}

// withdrawn takes the CLI's withdrawal of a request (it aborted the tool
// call): the request is answered by nobody now, and the caller learns of
// it (it reports true) if it was open.
func (r *Run) withdrawn(id string) bool {
	r.asks.mu.Lock()
	defer r.asks.mu.Unlock()
	_, open := r.asks.open[id]
	delete(r.asks.open, id)
	return open
}

// refuse answers a control request the service never asks the CLI to make
// (hooks, SDK servers): with an error rather than silence, which would hold
// the turn until its deadline.
func (r *Run) refuse(requestID, subtype string) {
	_ = r.writeInput(map[string]any{"type": "control_response", "response": map[string]any{
		"subtype": "error", "request_id": requestID, "error": fmt.Sprintf("%q is not supported", subtype)}})
}

// writeInput writes one stream-json line to stdin; lines never interleave.
func (r *Run) writeInput(v any) error {
	line, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("claude: encoding stdin: %w", err)
	}
	r.inMu.Lock()
	defer r.inMu.Unlock()
	if r.asks.isClosed() {
		return ErrNotAsked
	}
	if _, err := r.stdin.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("claude: writing stdin: %w", err)
	}
	return nil
}

func (a *asks) isClosed() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.closed
}

// endInput closes stdin once the result line is read: the CLI of a
// stream-json input waits for more otherwise.
func (r *Run) endInput() {
	r.inMu.Lock()
	defer r.inMu.Unlock()
	r.asks.mu.Lock()
	was := r.asks.closed
	r.asks.closed, r.asks.open = true, nil
	r.asks.mu.Unlock()
	if !was {
		_ = r.stdin.Close()
	}
}

// promptLine is the prompt as a stream-json user message.
func promptLine(prompt string) []byte {
	b, _ := json.Marshal(map[string]any{"type": "user", "session_id": "", "parent_tool_use_id": nil,
		"message": map[string]any{"role": "user", "content": prompt}})
	return append(b, '\n')
}

// What add did with a request.
const (
	askTaken   = iota
	askDropped // a repeat, or stdin is closed
	askTooMany
)

// add records a delivered Ask, unless it is a repeat of an open one, or
// one too many.
func (a *asks) add(k Ask) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, dup := a.open[k.RequestID]; dup || a.closed {
		return askDropped
	}
	if len(a.open) >= maxOpenAsks || a.total >= maxAsks {
		return askTooMany
	}
	if a.open == nil {
		a.open = map[string]json.RawMessage{}
	}
	a.open[k.RequestID] = k.Input
	a.total++
	return askTaken
}
