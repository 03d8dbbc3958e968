package transcript

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// FuzzParse: Parse never panics, fails only with a user-facing error, and
// what it accepts holds between 1 and maxMessages messages of valid roles.
func FuzzParse(f *testing.F) {
	f.Add([]byte(join(sample())))
	f.Add([]byte(strings.Join(sample()[1:4], "\r\n")))
	f.Add([]byte(line(chainEntry(1, 0, "user", []any{map[string]any{"type": "tool_result", "tool_use_id": "t",
		"content": []any{text("x"), map[string]any{"type": "image", "source": map[string]any{}}}}}))))
	f.Add([]byte(line(fields{"type": "summary", "summary": "s", "leafUuid": uid(1)}) + "\n" + line(chainEntry(1, 0, "user", "hi"))))
	f.Add([]byte("{\"type\":\"user\"}\n[]\nnull\n\xff"))
	const limit = 5
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(bytes.NewReader(data), testSession, limit)
		if err != nil {
			if c := ovrlrd.ErrorCode(err); c != ovrlrd.EINVALID && c != ovrlrd.ETOOLARGE {
				t.Fatalf("error %v of code %s", err, c)
			}
			return
		}
		if len(s.Messages) == 0 || len(s.Messages) > limit || s.ID != testSession {
			t.Fatalf("%d messages, id %q", len(s.Messages), s.ID)
		}
		for _, m := range s.Messages {
			if (m.Role != ovrlrd.RoleUser && m.Role != ovrlrd.RoleAssistant) || strings.TrimSpace(m.Content) == "" ||
				!utf8.ValidString(m.Content) || m.CreatedAt.IsZero() {
				t.Fatalf("message %+v", m)
			}
		}
	})
}
