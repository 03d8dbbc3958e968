package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// Every sample event in events/ decodes strictly into the type Lambda hands
// the function, and the real handler answers it with the expected status.
func TestSampleEvents(t *testing.T) {
	a := newApp(t)
	want := map[string]int{"chat-health.json": 200}
	files, _ := filepath.Glob("../../events/*.json")
	if len(files) == 0 {
		t.Fatal("no sample events")
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			status, ok := want[name]
			if !ok {
				t.Fatalf("no expected status for %s", name)
			}
			var ev events.APIGatewayV2HTTPRequest
			strictDecode(t, f, &ev)
			h := a.Chat()
			if strings.HasPrefix(name, "auth-") {
				h = a.Auth()
			}
			resp, err := h(context.Background(), ev)
			if err != nil || resp.StatusCode != status {
				t.Fatalf("got %d %q %v, want %d", resp.StatusCode, resp.Body, err, status)
			}
		})
	}
}

func strictDecode(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("%s: trailing data", path)
	}
}
