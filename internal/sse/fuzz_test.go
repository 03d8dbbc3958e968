package sse_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/devkit/ssetest"
	"github.com/ovrlrd/cloud/internal/sse"
)

// FuzzWriter: for any string, every event kind carrying it is written in
// one Write, framed as one `data:` line, and the app's decoder recovers
// exactly the string (with invalid UTF-8 bytes replaced by U+FFFD, as any
// JSON encoder must).
func FuzzWriter(f *testing.F) {
	for _, s := range []string{
		"", "hello", tricky, "✓ Approved: Bash", "🎉👩🏽‍💻", "\n\n", "data: {}\n\n", "\r\n\r\n",
		"\u2028\u2029", "\x00", "\xff", "\xed\xa0\x80", "a\xe2\x80", `"}\n\n{"type":"complete"}`,
		" \t leading and trailing \t ", "\\u0000", "<local-command-stdout>x</local-command-stdout>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := string([]rune(s)) // invalid bytes → U+FFFD, one per byte
		for _, e := range everyKind(s) {
			rec := &recorder{}
			w := sse.NewWriter(rec)
			if err := w.Send(e); err != nil {
				t.Fatal(err)
			}
			if len(rec.writes) != 1 {
				t.Fatalf("%s: %d writes", e.Type, len(rec.writes))
			}
			frame := rec.writes[0]
			if !bytes.HasPrefix(frame, []byte("data: {")) || !bytes.HasSuffix(frame, []byte("}\n\n")) ||
				bytes.Count(frame, []byte("\n")) != 2 || bytes.IndexByte(frame, '\r') >= 0 {
				t.Fatalf("%s: bad frame %q", e.Type, frame)
			}
			evs, err := ssetest.Decode(frame)
			if err != nil {
				t.Fatalf("%s: client decode %q: %v", e.Type, frame, err)
			}
			if len(evs) != 1 {
				t.Fatalf("%s: %d events decoded", e.Type, len(evs))
			}
			g := evs[0]
			var field string
			switch e.Type {
			case sse.Chunk, sse.SegmentEnd:
				field = g.Content
			case sse.ToolStart, sse.ToolEnd:
				field = g.ToolName
			case sse.Complete:
				field = g.Title
			case sse.NoResponse, sse.Error:
				field = g.Message
			case sse.PermissionRequired:
				if len(g.Denials) != 1 {
					t.Fatalf("denials %+v", g.Denials)
				}
				field = g.Denials[0].ToolName
				if c, _ := g.Denials[0].ToolInput["command"].(string); c != want {
					t.Fatalf("tool_input.command = %q, want %q", c, want)
				}
			case sse.Ping:
				continue
			}
			if g.Type != e.Type || field != want {
				t.Fatalf("%s: decoded %q (type %s), want %q", e.Type, field, g.Type, want)
			}
			if strings.Contains(g.Data, "\n") {
				t.Fatal("newline in data")
			}
		}
	})
}
