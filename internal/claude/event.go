// Package claude runs the Claude Code CLI and reads its stream-json output.
package claude

import (
	"encoding/json"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// Event is one line of the CLI's stream-json output, reduced to what the
// service uses. Unknown types and fields are ignored: new CLI versions add
// them.
type Event struct {
	Type    string // system, assistant, user, result, stream_event, ...
	Subtype string // init, api_retry (system); success, error_* (result)

	// SessionID is set on system/init (and on result): the id the next turn
	// resumes.
	SessionID string

	// Blocks are an assistant message's content blocks.
	Blocks []Block
	// ParentToolUseID is set on messages of a sub-agent (the Task tool).
	ParentToolUseID string

	// UserText is the content of a user line whose content is a string
	// (slash-command output); tool results (array content) leave it empty.
	UserText string

	// Result is set on the final result line.
	Result *Result

	// Ask is a control_request's (Subtype is the request's): for
	// can_use_tool, a tool call the CLI asks the caller to allow. Only a
	// run with Options.Asks delivers it.
	Ask *Ask
	// Withdrawn is a control_cancel_request's: the id of an Ask the CLI
	// no longer waits on. Delivered only for an Ask still unanswered.
	Withdrawn string
}

// Block is one content block of an assistant message.
type Block struct {
	Type      string          // text, tool_use, thinking, ...
	Text      string          // for text
	ToolName  string          // for tool_use
	ToolUseID string          // for tool_use
	Input     json.RawMessage // for tool_use
}

// Result is the CLI's final line of a run.
type Result struct {
	IsError           bool
	Text              string // the final answer, or the error message
	APIErrorStatus    int    // HTTP status of a failed model call, 0 if none
	SessionID         string
	TotalCostUSD      float64
	Usage             Usage
	PermissionDenials []Denial
}

// Usage is the token usage of a run.
type Usage struct {
	InputTokens              int64 `json:"input_tokens"`
	OutputTokens             int64 `json:"output_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
}

// Denial is a tool call the CLI refused for want of permission, as the
// domain names it.
type Denial = ovrlrd.PermissionDenial
