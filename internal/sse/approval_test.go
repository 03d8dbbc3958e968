package sse_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/sse"
)

// A permission_request carries the request in the order, its tool
// input as an object the client can decode, and nothing of the turn's ids.
func TestPermissionRequestEncoding(t *testing.T) {
	a := &ovrlrd.Approval{
		ID: "r-1", ConversationID: "c-1", UserID: "u-secret", TurnID: "T-secret", ToolName: "Bash",
		ToolInput: json.RawMessage(`{"command":"npm test","n":1e3,"bad":"\ud800"}`),
		ExpiresAt: ovrlrd.Timestamp(time.Date(2026, 12, 4, 15, 4, 5, 678e6, time.UTC)),
	}
	got, err := sse.Encode(sse.Event{Type: sse.PermissionRequest, Approval: a})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"permission_request","conversationId":"c-1","requestId":"r-1","toolName":"Bash",` +
		`"toolInput":{"command":"npm test","n":1e3,"bad":"` + "\ufffd" + `"},"expiresAt":"2026-12-04T15:04:05.678Z"}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	// Input that is not an object is sent as {}, as a denial's is.
	a.ToolInput = json.RawMessage(`"rm -rf /"`)
	if got, _ := sse.Encode(sse.Event{Type: sse.PermissionRequest, Approval: a}); !json.Valid(got) ||
		string(got) != `{"type":"permission_request","conversationId":"c-1","requestId":"r-1","toolName":"Bash","toolInput":{},"expiresAt":"2026-12-04T15:04:05.678Z"}` {
		t.Fatalf("got %s", got)
	}
}
