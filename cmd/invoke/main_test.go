package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/devkit/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

func invoke(t *testing.T, fn, event string) (string, error) {
	t.Helper()
	env := map[string]string{"DYNAMODB_ENDPOINT": storetest.Endpoint(), "TABLE_NAME": storetest.TableName(), "LOG_LEVEL": "error"}
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"-fn", fn, filepath.Join("..", "..", "events", event)},
		func(k string) string { return env[k] }, &out, &errOut)
	if err != nil {
		t.Logf("stderr: %s", errOut.String())
	}
	return out.String(), err
}

// `make invoke` prints what the function answers, for each kind of event.
func TestInvoke(t *testing.T) {
	for _, c := range []struct {
		fn, event string
		status    int
	}{
		{"chat", "chat-health.json", 200},
		{"chat", "chat-default.json", 404},
		{"auth", "auth-signin.json", 401},
		{"stream", "stream-new.json", 401},
	} {
		out, err := invoke(t, c.fn, c.event)
		if err != nil {
			t.Fatalf("%s %s: %v", c.fn, c.event, err)
		}
		var resp struct{ StatusCode int }
		if err := json.NewDecoder(strings.NewReader(out)).Decode(&resp); err != nil || resp.StatusCode != c.status {
			t.Errorf("%s %s: printed %q, want status %d", c.fn, c.event, out, c.status)
		}
	}
}

func TestInvokeUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"-fn", "nope", "x.json"}, {"-fn", "chat"}} {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), args, func(string) string { return "" }, &out, &errOut); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	if _, err := invoke(t, "chat", "no-such-event.json"); err == nil {
		t.Error("a missing event file was accepted")
	}
}
