package ovrlrd

import "encoding/json"

// PermissionDenial is a tool call the CLI refused for want of permission.
// It goes to the app verbatim, snake_case included.
type PermissionDenial struct {
	ToolName  string          `json:"tool_name"`
	ToolUseID string          `json:"tool_use_id"`
	ToolInput json.RawMessage `json:"tool_input"`
}
