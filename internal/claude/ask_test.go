package claude

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/anthropicfake"
	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
)

// askOpts are Options for an asking run of the real CLI against the model
// stand-in, which answers "RUN: <command>" with one Bash call of it.
func askOpts(t *testing.T) (Options, *anthropicfake.Server) {
	t.Helper()
	srv := anthropicfake.New(anthropicfake.Commands())
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	o := Options{
		Path: claudetest.RealCLI(t), Dir: filepath.Join(dir, "work"), ConfigDir: filepath.Join(dir, "config"),
		Env:  Environment(Env{Home: dir, ConfigDir: filepath.Join(dir, "config"), BaseURL: srv.URL, Token: "test"}),
		Asks: true, IdleTimeout: time.Minute, KillGrace: 500 * time.Millisecond,
	}
	return o, srv
}

// answerAsks runs o, answering each ask with answer, and returns the asks,
// the events and the exit.
func answerAsks(t *testing.T, o Options, answer func(*Run, Ask)) ([]Ask, []Event, Exit) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	var asks []Ask
	var events []Event
	for ev := range r.Events() {
		events = append(events, ev)
		if ev.Ask != nil {
			asks = append(asks, *ev.Ask)
			answer(r, *ev.Ask)
		}
	}
	exit, err := r.Wait()
	if err != nil {
		t.Fatalf("run: %v (stderr %q)", err, exit.Stderr)
	}
	return asks, events, exit
}

// An allowed tool runs in the same run: the model gets its output and
// answers, and the CLI exits once the result is out (stdin is closed).
func TestAskAllowRunsTheTool(t *testing.T) {
	o, srv := askOpts(t)
	o.Prompt = anthropicfake.CommandPrefix + "echo approved > out.txt; cat out.txt"
	asks, events, exit := answerAsks(t, o, func(r *Run, k Ask) {
		if err := r.Answer(k.RequestID, true, ""); err != nil {
			t.Errorf("answer: %v", err)
		}
		if err := r.Answer(k.RequestID, true, ""); err != ErrNotAsked {
			t.Errorf("a second answer: %v, want ErrNotAsked", err)
		}
	})
	if len(asks) != 1 || asks[0].ToolName != "Bash" || asks[0].ToolUseID == "" ||
		!strings.Contains(string(asks[0].Input), `"command":"echo approved > out.txt; cat out.txt"`) {
		t.Fatalf("asks %+v", asks)
	}
	if got, err := os.ReadFile(filepath.Join(o.Dir, "out.txt")); err != nil || string(got) != "approved\n" {
		t.Fatalf("the tool did not run: %q %v", got, err)
	}
	if res := srv.ToolResults(); !slices.Equal(res, []string{"approved"}) {
		t.Fatalf("tool results the model got: %q", res)
	}
	last := events[len(events)-1]
	if last.Result == nil || last.Result.IsError || last.Result.Text != "Done." || exit.Tampered != 0 {
		t.Fatalf("last event %+v, tampered %d", last, exit.Tampered)
	}
}

// A denial reaches the model as the tool's error, with the message given;
// the tool never runs.
func TestAskDenyTellsTheModel(t *testing.T) {
	o, srv := askOpts(t)
	o.Prompt = anthropicfake.CommandPrefix + "touch denied.txt"
	asks, _, _ := answerAsks(t, o, func(r *Run, k Ask) {
		if err := r.Answer(k.RequestID, false, "The user said no."); err != nil {
			t.Errorf("answer: %v", err)
		}
	})
	if len(asks) != 1 {
		t.Fatalf("asks %+v", asks)
	}
	if _, err := os.Stat(filepath.Join(o.Dir, "denied.txt")); !os.IsNotExist(err) {
		t.Fatalf("the denied tool ran: %v", err)
	}
	if res := srv.ToolResults(); len(res) != 1 || !strings.Contains(res[0], "The user said no.") {
		t.Fatalf("tool results the model got: %q", res)
	}
}

// A run that does not ask gets the CLI's arguments and stdin of today, and
// a control request in its output is somebody else's: dropped, counted.
func TestControlRequestUninvited(t *testing.T) {
	o := opts(t, "hi")
	if args := strings.Join(o.Args(), " "); strings.Contains(args, "stdio") || strings.Contains(args, "--input-format") {
		t.Fatalf("args %q", args)
	}
	o.Asks = true
	if args := strings.Join(o.Args(), " "); !strings.Contains(args, "--output-format stream-json --verbose --input-format stream-json --permission-prompt-tool stdio") {
		t.Fatalf("asking args %q", args)
	}
	ask := `{"type":"control_request","request_id":"r1","request":{"subtype":"can_use_tool","tool_name":"Bash","input":{"command":"id"}}}`
	script, _ := json.Marshal(map[string]any{"mode": "lines", "lines": []string{ask, `{"type":"result","result":"ok"}`}})
	out := run(t, context.Background(), opts(t, string(script)))
	if out.exit.Tampered != 1 || slices.ContainsFunc(out.events, func(e Event) bool { return e.Ask != nil }) {
		t.Fatalf("tampered %d, events %+v", out.exit.Tampered, out.events)
	}
}

// askLines runs the fake CLI, asking, on lines given verbatim (it never
// reads its stdin), and returns the events and the exit.
func askLines(t *testing.T, lines ...string) outcome {
	t.Helper()
	script, _ := json.Marshal(map[string]any{"mode": "lines", "lines": append(lines, `{"type":"result","result":"ok"}`)})
	o := opts(t, "")
	o.Asks = true
	o.Env = append(o.Env, "FAKECLAUDE_NO_STDIN=1", "FAKECLAUDE_SCRIPT="+string(script))
	return run(t, context.Background(), o)
}

func toolUse(id string) string {
	return `{"type":"assistant","message":{"content":[{"type":"tool_use","id":"` + id + `","name":"Bash","input":{"command":"id"}}]}}`
}

func canUse(requestID, toolUseID string) string {
	return `{"type":"control_request","request_id":"` + requestID + `","request":{"subtype":"can_use_tool","tool_name":"Bash","tool_use_id":"` + toolUseID + `","input":{"command":"id"}}}`
}

// An asking run delivers a tool's request once; one without an id is
// tampering, and any other kind of request is refused. A withdrawal reaches
// the caller only for a request still open.
func TestAskOnlyToolRequests(t *testing.T) {
	out := askLines(t,
		`{"type":"control_request","request_id":"h1","request":{"subtype":"hook_callback"}}`,
		canUse("", "toolu_1"),
		toolUse("toolu_1"),
		canUse("t1", "toolu_1"),
		canUse("t1", "toolu_1"),
		`{"type":"control_cancel_request","request_id":"t1"}`,
		`{"type":"control_cancel_request","request_id":"t9"}`,
	)
	var asked, withdrawn []string
	for _, e := range out.events {
		if e.Ask != nil {
			asked = append(asked, e.Ask.RequestID)
		}
		if e.Withdrawn != "" {
			withdrawn = append(withdrawn, e.Withdrawn)
		}
	}
	if !slices.Equal(asked, []string{"t1"}) || !slices.Equal(withdrawn, []string{"t1"}) || out.exit.Tampered != 1 {
		t.Fatalf("asked %q, withdrawn %q, tampered %d (%s)", asked, withdrawn, out.exit.Tampered, out.exit.TamperReason)
	}
}

// A run asks about at most maxOpenAsks tools at once: the one past it is
// denied at once, never delivered.
func TestAskBounds(t *testing.T) {
	var lines []string
	for i := range maxOpenAsks + 1 {
		id := fmt.Sprint(i)
		lines = append(lines, toolUse("toolu_"+id), canUse("r"+id, "toolu_"+id))
	}
	out := askLines(t, lines...)
	asked := 0
	for _, e := range out.events {
		if e.Ask != nil {
			asked++
		}
	}
	if asked != maxOpenAsks || out.exit.Tampered != 0 {
		t.Fatalf("%d asked, %d tampered", asked, out.exit.Tampered)
	}
}

// While a person is asked, or was answered less than the idle timeout
// ago, the CLI's silence is not idleness.
func TestAskPausesIdleness(t *testing.T) {
	var a asks
	if a.waiting(time.Minute) {
		t.Fatal("waiting with nothing asked")
	}
	a.open = map[string]json.RawMessage{"r": nil}
	if !a.waiting(0) {
		t.Fatal("not waiting with a request open")
	}
	delete(a.open, "r")
	a.answered = time.Now()
	if !a.waiting(time.Minute) || a.waiting(0) {
		t.Fatal("an answer's grace is not the idle timeout")
	}
}

// The fake CLI's ask mode speaks the protocol as the real CLI does: each
// answer reaches it, in order, with its behaviour.
func TestFakeAsks(t *testing.T) {
	o := opts(t, `{"mode":"ask","n":2}`)
	o.Asks = true
	allow := true
	_, events, _ := answerAsks(t, o, func(r *Run, k Ask) {
		if err := r.Answer(k.RequestID, allow, "no"); err != nil {
			t.Error(err)
		}
		allow = !allow
	})
	var got []string
	for _, tx := range texts(events) {
		_, rest, _ := strings.Cut(tx, " ")
		got = append(got, rest)
	}
	if !slices.Equal(got, []string{"ask-0 allow", "ask-1 deny"}) {
		t.Fatalf("the fake got %q", got)
	}
}
