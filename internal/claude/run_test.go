package claude

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

func TestMain(m *testing.M) {
	if err := BecomeSubreaper(); err != nil {
		fmt.Fprintln(os.Stderr, "BecomeSubreaper:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// opts are Options for a fake run of script, with generous deadlines.
func opts(t *testing.T, script string) Options {
	t.Helper()
	dir := t.TempDir()
	return Options{
		Path:        claudetest.FakeCLI(t),
		Dir:         filepath.Join(dir, "work"),
		ConfigDir:   filepath.Join(dir, "config"),
		Prompt:      script,
		Env:         Environment(Env{Home: dir}),
		IdleTimeout: 20 * time.Second,
		KillGrace:   500 * time.Millisecond,
	}
}

type outcome struct {
	events  []Event
	exit    Exit
	err     error
	elapsed time.Duration // Start to Wait's return
}

// run starts o, collects every event, and waits.
func run(t *testing.T, ctx context.Context, o Options) outcome {
	t.Helper()
	start := time.Now()
	r, err := Start(ctx, o)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	var out outcome
	for ev := range r.Events() {
		out.events = append(out.events, ev)
	}
	out.exit, out.err = r.Wait()
	out.elapsed = time.Since(start)
	return out
}

func texts(evs []Event) []string {
	var out []string
	for _, ev := range evs {
		for _, b := range ev.Blocks {
			if b.Type == "text" {
				out = append(out, b.Text)
			}
		}
	}
	return out
}

func types(evs []Event) string {
	var s []string
	for _, ev := range evs {
		s = append(s, ev.Type)
	}
	return strings.Join(s, ",")
}

// inspect runs the fake's inspect mode and returns what it saw.
type seen struct {
	Args   []string `json:"args"`
	Env    []string `json:"env"`
	Cwd    string   `json:"cwd"`
	Prompt string   `json:"prompt"`
}

func inspect(t *testing.T, o Options) seen {
	t.Helper()
	out := run(t, context.Background(), o)
	if out.err != nil {
		t.Fatalf("run: %v (stderr %q)", out.err, out.exit.Stderr)
	}
	tx := texts(out.events)
	if len(tx) != 1 {
		t.Fatalf("want one text, got %q", tx)
	}
	var s seen
	if err := json.Unmarshal([]byte(tx[0]), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestArgs(t *testing.T) {
	o := opts(t, `{"mode":"argv"}`)
	o.AllowedTools = []string{"Bash(git status:*)", "Read", "Edit"}
	o.AdditionalDirs = []string{t.TempDir(), "/dir with space"}
	o.Resume = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
	s := inspect(t, o)
	want := []string{"-p", "--output-format", "stream-json", "--verbose",
		"--allowedTools", "Bash(git status:*) Read Edit",
		"--add-dir", o.AdditionalDirs[0], "--add-dir", "/dir with space",
		"--resume", "1b4e28ba-2fa1-11d2-883f-0016d3cca427"}
	if !reflect.DeepEqual(s.Args, want) {
		t.Errorf("argv\n got %q\nwant %q", s.Args, want)
	}
	if s.Cwd != o.Dir {
		t.Errorf("cwd %q, want %q", s.Cwd, o.Dir)
	}
	if s.Prompt != `{"mode":"argv"}` {
		t.Errorf("prompt %q", s.Prompt)
	}
	for _, d := range []string{o.Dir, o.ConfigDir} {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v %v, want a 0700 directory", d, fi.Mode(), err)
		}
	}

	// Without tools, dirs or resume, and in Text mode.
	bare := Options{}
	if got, want := bare.Args(), []string{"-p", "--output-format", "stream-json", "--verbose"}; !reflect.DeepEqual(got, want) {
		t.Errorf("bare args %q, want %q", got, want)
	}
	text := Options{Mode: Text, ExtraArgs: []string{"--model", "x"}}
	if got, want := text.Args(), []string{"-p", "--output-format", "text", "--model", "x"}; !reflect.DeepEqual(got, want) {
		t.Errorf("text args %q, want %q", got, want)
	}
}

func TestPromptOnStdin(t *testing.T) {
	// Not JSON, so the fake echoes it; bigger than a pipe buffer and than
	// the 128 KiB argv limit.
	prompt := "héllo ✓ /cost\n" + strings.Repeat("0123456789abcdef", 20<<10)
	out := run(t, context.Background(), opts(t, prompt))
	if out.err != nil {
		t.Fatalf("run: %v", out.err)
	}
	if tx := texts(out.events); len(tx) != 1 || tx[0] != prompt {
		t.Errorf("echoed %d texts; first %.40q", len(tx), tx)
	}
	if out.exit.StdinErr != nil {
		t.Errorf("StdinErr %v", out.exit.StdinErr)
	}
	if got := types(out.events); got != "system,assistant,result" {
		t.Errorf("types %s", got)
	}
	last := out.events[len(out.events)-1]
	if last.Result == nil || last.Result.Usage.CacheReadInputTokens != 40 || last.SessionID == "" || last.SessionID != out.events[0].SessionID {
		t.Errorf("result %#v", last.Result)
	}

	// An empty prompt: stdin is at EOF at once (the fake reads it all
	// before anything else, so this would hang otherwise).
	o := opts(t, "")
	o.Env = append(o.Env, `FAKECLAUDE_SCRIPT={"mode":"normal","text":"no prompt"}`)
	out = run(t, context.Background(), o)
	if tx := texts(out.events); out.err != nil || len(tx) != 1 || tx[0] != "no prompt" {
		t.Errorf("empty prompt: %v %q", out.err, tx)
	}
}

// A CLI that dies without reading its prompt: the write error is reported,
// and what it printed is still delivered.
func TestStdinErrorNotFatal(t *testing.T) {
	o := opts(t, strings.Repeat("x", 1<<20))
	o.Env = append(o.Env, "FAKECLAUDE_NO_STDIN=1", `FAKECLAUDE_SCRIPT={"mode":"normal","text":"did not read"}`)
	out := run(t, context.Background(), o)
	if out.err != nil || out.exit.StdinErr == nil {
		t.Errorf("err %v StdinErr %v, want nil and a write error", out.err, out.exit.StdinErr)
	}
	if tx := texts(out.events); len(tx) != 1 || tx[0] != "did not read" {
		t.Errorf("texts %q", tx)
	}
}

func TestEnvironmentIsExplicit(t *testing.T) {
	t.Setenv("JWT_SECRET", "jwt-secret-value")
	t.Setenv("API_KEY", "server-api-key")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "process-aws-secret")
	o := opts(t, `{"mode":"dump-env"}`)
	e := Env{
		Home: "/home/x", ConfigDir: o.ConfigDir, TempDir: "/tmp/turn",
		Provider: ovrlrd.Anthropic, Token: "turn-token-1234567890",
		BaseURL: "http://127.0.0.1:9/t/turn-token-1234567890", MaxRetries: 2,
	}
	o.Env = Environment(e)
	s := inspect(t, o)
	var markers []string
	var rest []string
	for _, kv := range s.Env {
		if strings.HasPrefix(kv, RunMarkerVar+"=") {
			markers = append(markers, kv)
		} else {
			rest = append(rest, kv)
		}
	}
	want := []string{
		"PATH=" + DefaultPath, "HOME=/home/x", "CLAUDE_CONFIG_DIR=" + o.ConfigDir,
		"ANTHROPIC_API_KEY=turn-token-1234567890", "ANTHROPIC_BASE_URL=http://127.0.0.1:9/t/turn-token-1234567890",
		"CLAUDE_CODE_MAX_RETRIES=2",
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1", "DISABLE_TELEMETRY=1", "DISABLE_AUTOUPDATER=1",
		"DISABLE_ERROR_REPORTING=1", "TMPDIR=/tmp/turn",
	}
	if os.Geteuid() == 0 {
		want = append(want, "IS_SANDBOX=1")
	}
	sort.Strings(want)
	sort.Strings(rest)
	if !reflect.DeepEqual(rest, want) {
		t.Errorf("child env\n got %q\nwant %q", rest, want)
	}
	if len(markers) != 1 || len(markers[0]) != len(RunMarkerVar)+1+26 {
		t.Errorf("markers %q", markers)
	}
	for _, kv := range s.Env {
		if strings.Contains(kv, "jwt-secret-value") || strings.Contains(kv, "server-api-key") || strings.Contains(kv, "process-aws-secret") {
			t.Errorf("leaked %q", kv)
		}
	}
}

func TestEnvironmentProviders(t *testing.T) {
	has := func(env []string, kv string) bool { return slices.Contains(env, kv) }
	b := Environment(Env{Provider: ovrlrd.Bedrock, Token: "tok", BaseURL: "http://127.0.0.1:9/t/tok", AWSRegion: "eu-west-1"})
	for _, kv := range []string{"CLAUDE_CODE_USE_BEDROCK=1", "CLAUDE_CODE_SKIP_BEDROCK_AUTH=1", "AWS_REGION=eu-west-1",
		"ANTHROPIC_BEDROCK_BASE_URL=http://127.0.0.1:9/t/tok", "PATH=" + DefaultPath} {
		if !has(b, kv) {
			t.Errorf("bedrock env lacks %s: %q", kv, b)
		}
	}
	for _, kv := range b {
		// No AWS credential: the proxy signs.
		if strings.HasPrefix(kv, "AWS_ACCESS_KEY_ID=") || strings.HasPrefix(kv, "AWS_SECRET_ACCESS_KEY=") ||
			strings.HasPrefix(kv, "HOME=") || strings.HasPrefix(kv, "ANTHROPIC_BASE_URL=") {
			t.Errorf("bedrock env has %s", kv)
		}
	}
	o := Environment(Env{Provider: ovrlrd.OAuth, Token: "tok", BaseURL: "http://127.0.0.1:9/t/tok"})
	if !has(o, "CLAUDE_CODE_OAUTH_TOKEN=tok") || !has(o, "ANTHROPIC_BASE_URL=http://127.0.0.1:9/t/tok") ||
		slices.ContainsFunc(o, func(kv string) bool { return strings.HasPrefix(kv, "ANTHROPIC_API_KEY=") }) {
		t.Errorf("oauth env %q", o)
	}
}

// A configured model is the turn's model with every provider. With Bedrock,
// whose role may be granted that model alone, every other model the CLI
// could choose (background, sub-agent, per family) is that model too.
func TestEnvironmentPinsTheModel(t *testing.T) {
	const model = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
	bedrock := Environment(Env{Provider: ovrlrd.Bedrock, Model: model})
	for _, name := range []string{"ANTHROPIC_MODEL", "ANTHROPIC_SMALL_FAST_MODEL", "CLAUDE_CODE_SUBAGENT_MODEL",
		"ANTHROPIC_DEFAULT_OPUS_MODEL", "ANTHROPIC_DEFAULT_SONNET_MODEL", "ANTHROPIC_DEFAULT_HAIKU_MODEL", "ANTHROPIC_DEFAULT_FABLE_MODEL"} {
		if !slices.Contains(bedrock, name+"="+model) {
			t.Errorf("bedrock env lacks %s=%s: %q", name, model, bedrock)
		}
	}
	anthropic := Environment(Env{Provider: ovrlrd.Anthropic, Model: "claude-sonnet-4-5"})
	for _, kv := range anthropic {
		name, v, _ := strings.Cut(kv, "=")
		if strings.Contains(name, "MODEL") && name != "ANTHROPIC_MODEL" {
			t.Errorf("anthropic env pins %s=%s: its background model keeps its own default", name, v)
		}
	}
	if !slices.Contains(anthropic, "ANTHROPIC_MODEL=claude-sonnet-4-5") {
		t.Errorf("anthropic env lacks the model: %q", anthropic)
	}
	for _, kv := range Environment(Env{Provider: ovrlrd.Bedrock}) {
		if strings.Contains(kv, "MODEL=") {
			t.Errorf("no model configured, yet %s", kv)
		}
	}
}

func TestCrashMidStream(t *testing.T) {
	out := run(t, context.Background(), opts(t, `{"mode":"crash","n":4}`))
	if got := types(out.events); got != "system,assistant,assistant,assistant,assistant" {
		t.Errorf("events %s", got)
	}
	if out.exit.Code != 1 || out.exit.Reason != nil || out.err == nil {
		t.Errorf("exit %+v err %v, want code 1, no reason, an error", out.exit, out.err)
	}
	if !strings.Contains(out.exit.Stderr, "boom") {
		t.Errorf("stderr %q", out.exit.Stderr)
	}
}

func TestIdleDeadline(t *testing.T) {
	o := opts(t, `{"mode":"silent"}`)
	// Long enough for a loaded machine to start the fake and read its init.
	o.IdleTimeout = time.Second
	o.KillGrace = 300 * time.Millisecond
	out := run(t, context.Background(), o)
	if !errors.Is(out.exit.Reason, ErrIdle) || !errors.Is(out.err, ErrIdle) {
		t.Fatalf("reason %v err %v, want ErrIdle", out.exit.Reason, out.err)
	}
	if types(out.events) != "system" {
		t.Errorf("events %s", types(out.events))
	}
	if out.elapsed < o.IdleTimeout {
		t.Errorf("stopped after %v, before the idle deadline of %v", out.elapsed, o.IdleTimeout)
	}
	// The fake dies on SIGTERM: no need for the grace period.
	if out.exit.Signal != syscall.SIGTERM {
		t.Errorf("signal %v", out.exit.Signal)
	}
}

// A consumer that stops receiving for longer than IdleTimeout is not an
// idle CLI.
func TestIdleNotTriggeredBySlowConsumer(t *testing.T) {
	o := opts(t, `{"mode":"flood","n":3000}`)
	o.IdleTimeout = time.Second
	r, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	// The first event proves the CLI is up; then the consumer stalls, with
	// the CLI's pipe full behind it, until a silent CLI started now is
	// stopped by an idle deadline twice as long: the stall has outlasted
	// the flood's.
	n := 0
	if _, ok := <-r.Events(); ok {
		n++
	}
	clock := opts(t, `{"mode":"silent"}`)
	clock.IdleTimeout = 2 * o.IdleTimeout
	if out := run(t, context.Background(), clock); !errors.Is(out.err, ErrIdle) {
		t.Fatalf("the silent run ended with %v, not its idle deadline", out.err)
	}
	for range r.Events() {
		n++
	}
	exit, err := r.Wait()
	if err != nil || n != 3002 {
		t.Errorf("err %v (%+v), %d events, want 3002", err, exit.Reason, n)
	}
}

// The total deadline is the caller's context's.
func TestTotalDeadline(t *testing.T) {
	o := opts(t, `{"mode":"slow-total"}`)
	o.IdleTimeout = 5 * time.Second
	const timeout = 700 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out := run(t, ctx, o)
	if !errors.Is(out.exit.Reason, ErrTimeout) || !errors.Is(out.err, ErrTimeout) {
		t.Fatalf("reason %v err %v, want ErrTimeout", out.exit.Reason, out.err)
	}
	if n := len(out.events); n < 4 {
		t.Errorf("only %d events", n)
	}
	if out.elapsed < timeout {
		t.Errorf("stopped after %v, before the deadline of %v", out.elapsed, timeout)
	}
}

// Cancelled once the CLI is up (its init has arrived): the reason wraps
// the context's cause.
func TestContextDeadlineAndCancel(t *testing.T) {
	cause := errors.New("client went away")
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	r, err := Start(ctx, opts(t, `{"mode":"silent"}`))
	if err != nil {
		t.Fatal(err)
	}
	if ev, ok := <-r.Events(); !ok || ev.Type != "system" {
		t.Fatalf("first event %+v %v, want the init", ev, ok)
	}
	cancel(cause)
	for range r.Events() {
	}
	exit, _ := r.Wait()
	if !errors.Is(exit.Reason, ErrCancelled) || !errors.Is(exit.Reason, cause) {
		t.Errorf("ctx cancel: reason %v, want ErrCancelled wrapping the cause", exit.Reason)
	}
}

func TestGarbageAndHugeLines(t *testing.T) {
	o := opts(t, `{"mode":"garbage"}`) // a 20 MiB line among others
	o.MaxLine = 1 << 20
	out := run(t, context.Background(), o)
	if out.err != nil {
		t.Fatalf("run: %v", out.err)
	}
	if got := types(out.events); got != "system,assistant,result" {
		t.Errorf("events %s", got)
	}
	if tx := texts(out.events); len(tx) != 1 || tx[0] != "after the garbage" {
		t.Errorf("texts %q", tx)
	}
	if out.exit.BadLines != 3 || out.exit.HugeLines != 1 {
		t.Errorf("bad %d huge %d, want 3 and 1", out.exit.BadLines, out.exit.HugeLines)
	}
	// A line just under MaxLine is delivered whole.
	big := strings.Repeat("y", 900<<10)
	line, _ := json.Marshal(map[string]any{"type": "assistant", "message": map[string]any{"content": []any{map[string]any{"type": "text", "text": big}}}})
	script, _ := json.Marshal(map[string]any{"mode": "lines", "lines": []string{"noise", string(line), `{"type":"result","result":"ok"}`}})
	o = opts(t, string(script))
	o.MaxLine = 1 << 20
	out = run(t, context.Background(), o)
	if tx := texts(out.events); len(tx) != 1 || tx[0] != big || out.exit.BadLines != 1 || out.exit.HugeLines != 0 {
		t.Errorf("near-limit line: %d texts, bad %d huge %d", len(tx), out.exit.BadLines, out.exit.HugeLines)
	}
}

func TestStopKillsEveryDescendant(t *testing.T) {
	o := opts(t, `{"mode":"ignore-term"}`)
	o.KillGrace = 500 * time.Millisecond
	zombies := zombieChildren(t)
	r, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	grandchild := reportedGrandchild(t, r)
	// The CLI and its grandchild (own session, so outside the CLI's
	// process group) carry the marker.
	if pids := markedAlive(t, r); len(pids) != 2 || !slices.Contains(pids, grandchild) || !slices.Contains(pids, r.Pid()) {
		t.Fatalf("processes with the marker %v, want the CLI %d and grandchild %d", pids, r.Pid(), grandchild)
	}
	reason := errors.New("user pressed stop")
	start := time.Now()
	r.Stop(reason)
	exit, err := r.Wait()
	took := time.Since(start)
	if exit.Reason != reason || err != reason {
		t.Errorf("reason %v err %v, want %v", exit.Reason, err, reason)
	}
	if took < o.KillGrace {
		t.Errorf("Stop+Wait took %v: the grace period was not given", took)
	}
	if pids := markedAlive(t, r); len(pids) != 0 {
		t.Errorf("still alive after Wait: %v", pids)
	}
	if err := syscall.Kill(grandchild, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("grandchild %d: kill 0 = %v, want ESRCH (dead and reaped)", grandchild, err)
	}
	if exit.Signal != syscall.SIGKILL {
		t.Errorf("signal %v, want SIGKILL after the grace", exit.Signal)
	}
	if z := zombieChildren(t); z > zombies {
		t.Errorf("%d zombie children, had %d", z, zombies)
	}
}

// The CLI ends by itself but leaves processes behind (a tool's background
// job in its own session, and one re-parented to us): Wait kills them all,
// and they are reaped by the time it returns.
func TestNormalExitKillsLeftovers(t *testing.T) {
	zombies := zombieChildren(t)
	o := opts(t, `{"mode":"orphan"}`)
	r, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	var evs []Event
	for ev := range r.Events() {
		evs = append(evs, ev)
	}
	exit, err := r.Wait()
	if err != nil || exit.Reason != nil || exit.Code != 0 {
		t.Fatalf("err %v exit %+v", err, exit)
	}
	if types(evs) != "system,assistant,result" {
		t.Errorf("events %s", types(evs))
	}
	if pids := markedAlive(t, r); len(pids) != 0 {
		t.Errorf("still alive after Wait: %v", pids)
	}
	if z := zombieChildren(t); z > zombies {
		t.Errorf("%d zombie children, had %d", z, zombies)
	}
}

func TestStartErrors(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "claude-plain")
	if err := os.WriteFile(plain, []byte("#!/bin/sh\necho hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "nope", "claude")
	base := Options{Dir: filepath.Join(dir, "w"), Env: []string{"PATH=" + dir}}
	tests := []struct {
		path string
		is   error
		msg  string
	}{
		{missing, ErrNotFound, "claude CLI not found at " + missing},
		{plain, ErrNotExecutable, "claude CLI at " + plain + ": not executable"},
		{dir, ErrNotExecutable, "not executable"},
		{"claude-not-there", ErrNotFound, "not in the run's PATH"},
		{"claude-plain", ErrNotExecutable, "not executable"},
		{"", ErrNotFound, "not found"},
	}
	for _, tc := range tests {
		o := base
		o.Path = tc.path
		r, err := Start(context.Background(), o)
		if r != nil || !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Start(%q) = %v, %v; want %v containing %q", tc.path, r, err, tc.is, tc.msg)
		}
	}
	if _, err := os.Stat(base.Dir); err == nil {
		t.Errorf("a failed Start created the work directory")
	}

	// A relative path is taken from this process's directory, not Dir.
	t.Chdir(filepath.Dir(claudetest.FakeCLI(t)))
	rel := opts(t, "hi")
	rel.Path = "./" + filepath.Base(claudetest.FakeCLI(t))
	if out := run(t, context.Background(), rel); out.err != nil || len(texts(out.events)) != 1 {
		t.Errorf("relative path: %v", out.err)
	}

	// A bare name is looked up in the run's PATH, not this process's.
	fake := claudetest.FakeCLI(t)
	o := opts(t, "hi")
	o.Path = filepath.Base(fake)
	o.Env = append(o.Env, "PATH="+filepath.Dir(fake))
	if out := run(t, context.Background(), o); out.err != nil || len(texts(out.events)) != 1 {
		t.Errorf("by PATH: %v", out.err)
	}
}

func TestStopWithoutReason(t *testing.T) {
	r, err := Start(context.Background(), opts(t, `{"mode":"silent"}`))
	if err != nil {
		t.Fatal(err)
	}
	<-r.Events() // init
	r.Stop(nil)
	r.Stop(errors.New("second stop is ignored"))
	exit, err := r.Wait()
	if exit.Reason != ErrCancelled || err != ErrCancelled {
		t.Errorf("reason %v err %v", exit.Reason, err)
	}
	// Stop after the end changes nothing.
	r.Stop(errors.New("late"))
	if exit2, _ := r.Wait(); exit2.Reason != ErrCancelled {
		t.Errorf("second Wait: %v", exit2.Reason)
	}
}

func TestStderrBounded(t *testing.T) {
	out := run(t, context.Background(), opts(t, `{"mode":"stderr","stderr_bytes":300000}`))
	if out.err != nil {
		t.Fatal(out.err)
	}
	if len(out.exit.Stderr) != stderrLimit || strings.Trim(out.exit.Stderr, "e") != "" {
		t.Errorf("stderr %d bytes, want the first %d", len(out.exit.Stderr), stderrLimit)
	}
	if len(texts(out.events)) != 1 {
		t.Errorf("events %s", types(out.events))
	}
}

// Wait without draining Events must not hang (the reader drops what is
// left).
func TestWaitWithoutReading(t *testing.T) {
	r, err := Start(context.Background(), opts(t, `{"mode":"flood","n":5000}`))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { r.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Wait hung")
	}
}

// Wait returns only once every goroutine of the run has ended, so none is
// left the moment it returns. The reaper (TestMain started it) runs before
// and after.
func TestNoGoroutineLeft(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, script := range []string{`{"mode":"normal"}`, `{"mode":"crash"}`, `{"mode":"silent"}`} {
		o := opts(t, script)
		o.IdleTimeout = 200 * time.Millisecond
		o.KillGrace = 100 * time.Millisecond
		run(t, context.Background(), o)
	}
}

func TestTextMode(t *testing.T) {
	o := opts(t, "Conversation:\nuser: hi\nassistant: hello")
	o.Mode = Text
	o.IdleTimeout = time.Nanosecond // ignored in Text mode
	o.Env = append(o.Env, `FAKECLAUDE_SCRIPT={"mode":"normal","text":"Greeting Exchange"}`)
	out := run(t, context.Background(), o)
	if out.err != nil || out.exit.Output != "Greeting Exchange\n" || len(out.events) != 0 {
		t.Errorf("err %v output %q events %d", out.err, out.exit.Output, len(out.events))
	}
}

// The fake's session files behave as the CLI's: resume works in the same
// cwd, and an unknown id fails with an error result and exit 1.
func TestFakeResume(t *testing.T) {
	o := opts(t, "first")
	o.Env = Environment(Env{Home: o.ConfigDir, ConfigDir: o.ConfigDir})
	out := run(t, context.Background(), o)
	if out.err != nil {
		t.Fatal(out.err)
	}
	id := out.events[0].SessionID
	o.Prompt, o.Resume = "second", id
	if out = run(t, context.Background(), o); out.err != nil || out.events[0].SessionID != id {
		t.Errorf("resume: %v", out.err)
	}
	o.Resume = "00000000-0000-0000-0000-000000000000"
	out = run(t, context.Background(), o)
	last := out.events[len(out.events)-1]
	if out.exit.Code != 1 || last.Result == nil || !last.Result.IsError || !strings.Contains(out.exit.Stderr, "No conversation found") {
		t.Errorf("unknown id: exit %+v last %#v", out.exit, last)
	}
}

// Lines written at a steady rate are each delivered once, in the order
// written. (How soon they arrive is measured by make bench: "CLI line
// delivery".)
func TestRateLinesArriveInOrder(t *testing.T) {
	const n = 500
	r, err := Start(context.Background(), opts(t, fmt.Sprintf(`{"mode":"rate","n":%d,"rate":1000}`, n)))
	if err != nil {
		t.Fatal(err)
	}
	var stamps []int64
	for ev := range r.Events() {
		if len(ev.Blocks) == 1 {
			if ts, err := strconv.ParseInt(ev.Blocks[0].Text, 10, 64); err == nil {
				stamps = append(stamps, ts)
			}
		}
	}
	if _, err := r.Wait(); err != nil {
		t.Fatal(err)
	}
	if len(stamps) != n || !slices.IsSorted(stamps) {
		t.Fatalf("%d timestamps (want %d), sorted %v", len(stamps), n, slices.IsSorted(stamps))
	}
}

// BenchmarkThroughput: lines/s through Start..Events from a fake writing
// as fast as it can.
func BenchmarkThroughput(b *testing.B) {
	const n = 20000
	path := claudetest.FakeCLI(b)
	dir := b.TempDir()
	b.ResetTimer()
	for b.Loop() {
		r, err := Start(context.Background(), Options{Path: path, Dir: dir, Prompt: fmt.Sprintf(`{"mode":"flood","n":%d}`, n),
			Env: Environment(Env{Home: dir})})
		if err != nil {
			b.Fatal(err)
		}
		got := 0
		for range r.Events() {
			got++
		}
		if _, err := r.Wait(); err != nil || got != n+2 {
			b.Fatalf("%v, %d events", err, got)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
