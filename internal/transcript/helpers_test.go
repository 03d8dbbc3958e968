package transcript

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// testSession names the synthetic transcripts' session.
const testSession = "0f8fad5b-d9cb-469f-a165-70867728950e"

// uid is the nth entry's uuid.
func uid(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

// fields is one entry; line encodes it.
type fields map[string]any

func line(f fields) string {
	b, err := json.Marshal(f)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// stamp is the nth entry's time.
func stamp(n int) string {
	return time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC).Add(time.Duration(n) * 1001 * time.Millisecond).Format("2006-01-02T15:04:05.000Z")
}

// chainEntry is entry n of the given type and message, the child of entry
// parent (0: none), shaped as the CLI writes it.
func chainEntry(n, parent int, typ string, content any) fields {
	f := fields{
		"parentUuid": nil, "isSidechain": false, "type": typ, "uuid": uid(n),
		"timestamp": stamp(n), "cwd": "/srv/project", "sessionId": testSession, "version": "2.1.197",
	}
	if parent > 0 {
		f["parentUuid"] = uid(parent)
	}
	if typ == "user" || typ == "assistant" {
		f["message"] = map[string]any{"role": typ, "content": content}
	}
	return f
}

func text(s string) map[string]any { return map[string]any{"type": "text", "text": s} }

// sample is a well-formed transcript: a prompt, an answer with a tool call,
// the tool's result and a last answer, among the entries the CLI adds.
func sample() []string {
	return []string{
		line(fields{"type": "queue-operation", "operation": "enqueue", "timestamp": stamp(0), "sessionId": testSession, "content": "List it"}),
		line(chainEntry(1, 0, "user", "List it")),
		line(chainEntry(2, 1, "attachment", nil)),
		line(chainEntry(3, 2, "assistant", []any{text("Let me look.")})),
		line(chainEntry(4, 3, "assistant", []any{map[string]any{"type": "tool_use", "id": "toolu_1", "name": "Bash",
			"input": map[string]any{"command": "ls", "description": "List"}}})),
		line(chainEntry(5, 4, "user", []any{map[string]any{"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.txt", "is_error": false}})),
		line(chainEntry(6, 5, "assistant", []any{text("It holds a.txt.")})),
		line(fields{"type": "last-prompt", "lastPrompt": "List it", "leafUuid": uid(6), "sessionId": testSession}),
	}
}

func join(lines []string) string { return strings.Join(lines, "\n") + "\n" }
