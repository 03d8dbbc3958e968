package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/audit"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

type failingWriter struct{}

func (failingWriter) PutAudit(context.Context, ovrlrd.AuditEvent, time.Duration) error {
	return errors.New("table unreachable")
}

type capture struct{ got ovrlrd.AuditEvent }

func (c *capture) PutAudit(_ context.Context, ev ovrlrd.AuditEvent, _ time.Duration) error {
	c.got = ev
	return nil
}

// A failed audit write is never silent: it is logged at error level.
func TestFailedWriteIsLoggedAtErrorLevel(t *testing.T) {
	var out strings.Builder
	rec := audit.New(failingWriter{}, time.Hour, []byte("k"), slog.New(slog.NewJSONHandler(&out, nil)))
	rec.Record(context.Background(), audit.SignIn, "u1", audit.Client{IP: "192.0.2.1"}, "")
	if !strings.Contains(out.String(), `"level":"ERROR"`) || !strings.Contains(out.String(), "audit write failed") ||
		!strings.Contains(out.String(), audit.SignIn) {
		t.Fatalf("log: %s", out.String())
	}
	if strings.Contains(out.String(), "192.0.2.1") {
		t.Fatal("the raw address reached the log")
	}
}

func TestAddressIsHashedWithTheKey(t *testing.T) {
	c := &capture{}
	rec := audit.New(c, time.Hour, []byte("k1"), slog.New(slog.DiscardHandler))
	rec.Record(context.Background(), audit.RateLimited, "", audit.Client{IP: "192.0.2.1", UserAgent: strings.Repeat("x", 1000)}, "auth")
	if c.got.IPHash == "" || strings.Contains(c.got.IPHash, "192.0.2.1") || len(c.got.UserAgent) != 256 {
		t.Fatalf("event %+v", c.got)
	}
	other := audit.New(c, time.Hour, []byte("k2"), slog.New(slog.DiscardHandler))
	again := audit.New(c, time.Hour, []byte("k1"), slog.New(slog.DiscardHandler))
	if other.HashIP("192.0.2.1") == rec.HashIP("192.0.2.1") || again.HashIP("192.0.2.1") != rec.HashIP("192.0.2.1") {
		t.Fatal("hash must be stable per key and differ across keys")
	}
}

// An answered approval is recorded with its decision, conversation, request
// and tool, and never with the user's message or the tool's input.
func TestApprovalReason(t *testing.T) {
	a := ovrlrd.Approval{
		ID: "5b0c1d2e-0000-4000-8000-000000000001", ConversationID: "6f1c2b7e-3d4a-4b5c-8d9e-0a1b2c3d4e5f",
		ToolName: "Bash", ToolInput: json.RawMessage(`{"command":"cat secret-input"}`),
		Decision: ovrlrd.DecisionDeny, Message: "secret-message",
	}
	got := audit.ApprovalReason(a)
	want := `deny conversation=6f1c2b7e-3d4a-4b5c-8d9e-0a1b2c3d4e5f request=5b0c1d2e-0000-4000-8000-000000000001 tool="Bash"`
	if got != want {
		t.Fatalf("reason %q, want %q", got, want)
	}
	if strings.Contains(got, "secret") {
		t.Fatalf("the message or the input reached the trail: %q", got)
	}
	// A name no CLI sends is cut, and stays one quoted field.
	a.ToolName = strings.Repeat("é", 300)
	if got = audit.ApprovalReason(a); !strings.HasSuffix(got, ` tool="`+strings.Repeat("é", 128)+`"`) {
		t.Fatalf("a long tool name: %q", got)
	}
	a.ToolName = "x\" request=forged\n"
	if got = audit.ApprovalReason(a); !strings.HasSuffix(got, ` tool="x\" request=forged\n"`) {
		t.Fatalf("a tool name with a quote: %q", got)
	}
}
