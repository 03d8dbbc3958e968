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
//
// One goroutine of the run writes stdin (feed); everything else only
// queues a line and never waits on the pipe: a CLI that stops reading its
// stdin while it writes a full stdout must not stop the reader that would
// drain it. Nothing is written once the run is stopped.

// Ask is a tool call the CLI asks the caller to allow (Event.Ask).
type Ask struct {
	RequestID string // the control request's id, for Answer
	ToolName  string
	ToolUseID string
	Input     json.RawMessage // the tool's input, as the model gave it
}

// ErrNotAsked is Answer's error for a request the run has not asked, or
// has had answered, or once the run no longer takes answers.
var ErrNotAsked = errors.New("claude: no such request waits for an answer")

// Bounds of what one run may ask: a CLI gone wrong (or output forged past
// the sandbox) must not flood the user's phone and the table. Past them, a
// request is denied at once.
const (
	maxOpenAsks = 8
	maxAsks     = 100
	msgTooMany  = "Too many tool calls wait for the user's approval in this turn, so this one was not run."
	msgNoTool   = "The request names no tool, so it was not run."
	// inputQueue holds the lines a run queues while its CLI reads them:
	// an answer per request, and the end of input.
	inputQueue = maxAsks + maxOpenAsks + 2
)

// asks is what a run keeps of its open requests. The reader goroutine adds
// one before delivering its Ask; Answer removes it.
type asks struct {
	mu       sync.Mutex
	open     map[string]json.RawMessage // request id → the input an allow hands back
	total    int                        // requests delivered or refused, for maxAsks
	answered time.Time                  // the last answer: the CLI's silence before it was a person's
	closed   bool                       // the input has ended: no more lines are queued
	lines    chan []byte                // to feed; nil ends the input
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
// It fails with ErrNotAsked for a request not open, and once the input has
// ended (the result line, or the run stopped).
func (r *Run) Answer(requestID string, allow bool, message string) error {
	r.asks.mu.Lock()
	defer r.asks.mu.Unlock()
	input, ok := r.asks.open[requestID]
	if !ok || r.asks.closed || r.runCtx.Err() != nil {
		return ErrNotAsked
	}
	delete(r.asks.open, requestID)
	r.asks.answered = time.Now()
	answer := map[string]any{"behavior": "deny", "message": message}
	if allow {
		if !json.Valid(input) {
			input = json.RawMessage("{}")
		}
		answer = map[string]any{"behavior": "allow", "updatedInput": input}
	}
	return r.asks.queue(response(requestID, "success", "response", answer))
}

// asked takes a control request of a run that asks: a tool's is kept for
// Answer and delivered (it reports true). Every other is answered at once,
// never left unanswered, which would hold the turn until its deadline: a
// kind the service never asks the CLI to make (hooks, SDK servers) with an
// error, a tool's past the bounds with a denial.
func (r *Run) asked(ev Event) bool {
	k := ev.Ask
	r.asks.mu.Lock()
	defer r.asks.mu.Unlock()
	_, repeat := r.asks.open[k.RequestID]
	switch {
	case r.asks.closed || repeat:
		return false
	case r.asks.total >= maxAsks || len(r.asks.open) >= maxOpenAsks && ev.Subtype == "can_use_tool":
		r.asks.total++
		_ = r.asks.queue(deny(k.RequestID, msgTooMany))
		return false
	case ev.Subtype != "can_use_tool":
		r.asks.total++
		_ = r.asks.queue(response(k.RequestID, "error", "error", fmt.Sprintf("%q is not supported", ev.Subtype)))
		return false
	case k.ToolName == "":
		r.asks.total++
		_ = r.asks.queue(deny(k.RequestID, msgNoTool))
		return false
	}
	if r.asks.open == nil {
		r.asks.open = map[string]json.RawMessage{}
	}
	r.asks.open[k.RequestID] = k.Input
	r.asks.total++
	return true
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

func response(requestID, subtype, key string, v any) map[string]any {
	return map[string]any{"type": "control_response", "response": map[string]any{
		"subtype": subtype, "request_id": requestID, key: v}}
}

func deny(requestID, message string) map[string]any {
	return response(requestID, "success", "response", map[string]any{"behavior": "deny", "message": message})
}

// queue queues one stream-json line for feed; a.mu is held.
func (a *asks) queue(v any) error {
	line, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("claude: encoding stdin: %w", err)
	}
	select {
	case a.lines <- append(line, '\n'):
		return nil
	default: // cannot happen within the bounds; never wait for room
		return ErrNotAsked
	}
}

// endInput ends the input once the result line is read, or the run is
// stopped: the CLI of a stream-json input waits for more otherwise.
func (r *Run) endInput() {
	r.asks.mu.Lock()
	defer r.asks.mu.Unlock()
	if !r.asks.closed {
		r.asks.closed, r.asks.open = true, nil
		select {
		case r.asks.lines <- nil:
		default: // a CLI that floods requests and reads nothing: its run's end closes stdin
		}
	}
}

// feed writes the prompt, as a stream-json user message, then each queued
// line, until the input ends or the run is stopped; then it closes stdin.
// A failed write (the CLI is gone) drops the rest.
func (r *Run) feed() {
	defer r.stdin.Close()
	if _, err := r.stdin.Write(promptLine(r.opts.Prompt)); err != nil {
		r.exit.StdinErr = fmt.Errorf("claude: writing the prompt: %w", err)
		return
	}
	for {
		select {
		case line := <-r.asks.lines:
			if line == nil || r.runCtx.Err() != nil {
				return
			}
			if _, err := r.stdin.Write(line); err != nil {
				return
			}
		case <-r.runCtx.Done(): // stopped, or the CLI has exited
			return
		}
	}
}

// promptLine is the prompt as a stream-json user message.
func promptLine(prompt string) []byte {
	b, _ := json.Marshal(map[string]any{"type": "user", "session_id": "", "parent_tool_use_id": nil,
		"message": map[string]any{"role": "user", "content": prompt}})
	return append(b, '\n')
}
