// Command fakeclaude mimics the Claude Code CLI's print mode for tests, with
// fault injection.
//
// It reads its whole stdin first (so a test can tell that stdin was closed;
// not with FAKECLAUDE_NO_STDIN set; with --input-format stream-json only
// its first line, the prompt's message), then picks a script: the environment variable FAKECLAUDE_SCRIPT if set,
// else the prompt itself if it is a JSON object with a "mode", else
// {"mode":"normal"} (the reply echoes the prompt). With --output-format text
// it prints the script's text (default "Fake title") and exits.
//
// Modes:
//
//	normal       init, one assistant text (script text, else the prompt), result
//	error        init, result with is_error and api_error_status (script status, default 529)
//	denied       init, a tool_use, a result with one permission denial
//	lines        the script's lines verbatim, delay_ms apart, then exit 0
//	argv         (also dump-env) one assistant text holding JSON
//	             {"args","env","cwd","prompt"}, then result
//	crash        init, n assistant texts (3 when the script has no n, any
//	             n >= 0 otherwise), "boom" on stderr, exit 1, no result
//	silent       init, then sleeps forever
//	garbage      init, non-JSON lines, a 20 MiB line, more text, result
//	ignore-term  ignores SIGTERM; starts a grandchild in its own session that
//	             ignores SIGTERM too; prints init then sleeps forever
//	orphan       starts a grandchild in its own session (holding stdout) and a
//	             detached great-grandchild whose parent exits at once, then
//	             ends normally
//	flood        n assistant texts (1000 when the script has no n) as fast
//	             as possible; each text is the wall-clock nanosecond time it
//	             was written
//	rate         n assistant texts at rate lines/s, with the same timestamps
//	slow-total   a line every 100 ms forever
//	ask          (with --input-format stream-json) n Bash calls (1 when the
//	             script has no n), each with its control request, each
//	             followed, once its answer is read from stdin, by a text
//	             "<ns> <request id> <behavior>" stamped when the answer came;
//	             then result
//	ask-withdrawn as ask, but the first request is withdrawn
//	             (control_cancel_request) and followed by a text "withdrawn"
//	stderr       stderr_bytes bytes of "e" on stderr, then normal
//
// With await set, any mode first reads that file to its end: a fifo holds
// the run before its first line until a test closes its end.
//
// Sessions: with CLAUDE_CONFIG_DIR set, a run appends to
// $CLAUDE_CONFIG_DIR/projects/<cwd with / replaced by ->/<session>.jsonl, and
// --resume <id> fails as the CLI does (stderr "No conversation found with
// session ID: <id>", an error result, exit 1) when that file is missing.
package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type script struct {
	Mode        string            `json:"mode"`
	Text        string            `json:"text"`
	N           *int              `json:"n"` // nil: the mode's default
	Rate        float64           `json:"rate"`
	Status      int               `json:"status"`
	StderrBytes int               `json:"stderr_bytes"`
	DelayMS     int               `json:"delay_ms"`
	Lines       []json.RawMessage `json:"lines"`
	Await       string            `json:"await"`
}

var (
	out       = os.Stdout
	stdin     *bufio.Reader // a stream-json stdin, after its prompt
	sessionID string
	cfgFile   string // the session transcript, or ""
)

func main() {
	switch os.Getenv("FAKECLAUDE_ROLE") {
	case "sleeper": // a grandchild that outlives the CLI
		signal.Ignore(syscall.SIGTERM)
		sleepForever()
	case "detacher": // starts a sleeper and exits at once
		spawn("sleeper")
		os.Exit(0)
	}

	args := os.Args[1:]
	var resume, format, inFormat, argPrompt string
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "-p", "--print":
			if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				i++
				argPrompt = args[i]
			}
		case "--output-format":
			i++
			format = arg(args, i)
		case "--resume":
			i++
			resume = arg(args, i)
		case "--input-format":
			i++
			inFormat = arg(args, i)
		case "--permission-prompt-tool":
			i++
		case "--allowedTools", "--add-dir":
			i++
		}
	}
	var in []byte
	switch {
	case os.Getenv("FAKECLAUDE_NO_STDIN") != "":
	case inFormat == "stream-json":
		// The prompt is the first line, a user message; the answers to
		// control requests follow (mode ask), then the end of stdin.
		stdin = bufio.NewReader(os.Stdin)
		line, _ := stdin.ReadBytes('\n')
		var m struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		}
		_ = json.Unmarshal(line, &m)
		in = []byte(m.Message.Content)
	default:
		in, _ = io.ReadAll(os.Stdin)
	}
	prompt := string(in)
	if argPrompt != "" {
		prompt = argPrompt
	}

	var s script
	if env := os.Getenv("FAKECLAUDE_SCRIPT"); env != "" {
		_ = json.Unmarshal([]byte(env), &s)
	} else if t := strings.TrimSpace(prompt); strings.HasPrefix(t, "{") {
		_ = json.Unmarshal([]byte(t), &s)
	}
	if s.Mode == "" {
		s.Mode = "normal"
	}
	if s.Await != "" {
		if _, err := os.ReadFile(s.Await); err != nil {
			fmt.Fprintln(os.Stderr, "fakeclaude:", err)
			os.Exit(2)
		}
	}

	if format == "text" {
		if s.Text == "" {
			s.Text = "Fake title"
		}
		fmt.Fprintln(out, s.Text)
		return
	}

	sessionID = resume
	if sessionID == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		h := hex.EncodeToString(b[:])
		sessionID = h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	}
	if dir := os.Getenv("CLAUDE_CONFIG_DIR"); dir != "" {
		cwd, _ := os.Getwd()
		cfgFile = filepath.Join(dir, "projects", strings.ReplaceAll(cwd, "/", "-"), sessionID+".jsonl")
		if resume != "" {
			if _, err := os.Stat(cfgFile); err != nil {
				fmt.Fprintf(os.Stderr, "No conversation found with session ID: %s\n", resume)
				emit(map[string]any{"type": "result", "subtype": "error_during_execution", "is_error": true,
					"result": "No conversation found with session ID: " + resume, "session_id": sessionID,
					"api_error_status": nil, "num_turns": 0, "duration_ms": 1, "total_cost_usd": 0})
				os.Exit(1)
			}
		}
	}

	switch s.Mode {
	case "normal":
		text := s.Text
		if text == "" {
			text = prompt
		}
		initLine()
		assistantText(text)
		result(text, prompt)
	case "stderr":
		os.Stderr.Write(bytes.Repeat([]byte("e"), s.StderrBytes))
		initLine()
		assistantText("ok")
		result("ok", prompt)
	case "error":
		st := s.Status
		if st == 0 {
			st = 529
		}
		initLine()
		emit(map[string]any{"type": "result", "subtype": "success", "is_error": true,
			"api_error_status": st, "result": "API Error: overloaded", "session_id": sessionID,
			"num_turns": 1, "duration_ms": 5, "total_cost_usd": 0,
			"usage": map[string]int{"input_tokens": 1}})
	case "denied":
		initLine()
		input := map[string]string{"command": "rm -rf build"}
		emit(map[string]any{"type": "assistant", "session_id": sessionID, "parent_tool_use_id": nil,
			"message": map[string]any{"role": "assistant", "content": []any{
				map[string]any{"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": input}}}})
		emit(map[string]any{"type": "user", "session_id": sessionID,
			"message": map[string]any{"role": "user", "content": []any{
				map[string]any{"type": "tool_result", "tool_use_id": "toolu_01", "is_error": true,
					"content": "Claude requested permissions to use Bash, but you haven't granted it yet."}}}})
		assistantText("I need permission to run that.")
		emit(map[string]any{"type": "result", "subtype": "success", "is_error": false,
			"api_error_status": nil, "result": "I need permission to run that.", "session_id": sessionID,
			"num_turns": 2, "duration_ms": 9, "total_cost_usd": 0.002,
			"permission_denials": []any{map[string]any{"tool_name": "Bash", "tool_use_id": "toolu_01", "tool_input": input}}})
		saveTurn(prompt, "I need permission to run that.")
	case "lines":
		for i, l := range s.Lines {
			if i > 0 && s.DelayMS > 0 {
				time.Sleep(time.Duration(s.DelayMS) * time.Millisecond)
			}
			var str string
			if json.Unmarshal(l, &str) == nil {
				writeLine([]byte(str)) // a string is written raw (for non-JSON lines)
			} else {
				writeLine(l)
			}
		}
	case "argv", "dump-env":
		cwd, _ := os.Getwd()
		b, _ := json.Marshal(map[string]any{"args": os.Args[1:], "env": os.Environ(), "cwd": cwd, "prompt": prompt})
		initLine()
		assistantText(string(b))
		result("inspected", prompt)
	case "crash":
		initLine()
		for i := range s.n(3) {
			assistantText("part " + strconv.Itoa(i))
		}
		fmt.Fprintln(os.Stderr, "boom")
		os.Exit(1)
	case "silent":
		initLine()
		sleepForever()
	case "garbage":
		const size = 20 << 20
		initLine()
		writeLine([]byte("this is not json"))
		writeLine([]byte(`{"type":"assistant","message":{"content":[{"type":"text","text":"trunc`))
		writeLine([]byte("[1,2,3]"))
		big := []byte(`{"type":"assistant","message":{"content":[{"type":"text","text":"`)
		chunk := bytes.Repeat([]byte("x"), 1<<20)
		out.Write(big)
		for n := len(big); n < size; n += len(chunk) {
			out.Write(chunk[:min(len(chunk), size-n)])
		}
		out.Write([]byte("\"}]}}\n"))
		assistantText("after the garbage")
		result("after the garbage", prompt)
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		pid := spawn("sleeper")
		initLine()
		assistantText("grandchild " + strconv.Itoa(pid))
		sleepForever()
	case "orphan":
		spawn("sleeper")
		spawn("detacher")
		initLine()
		assistantText("left processes behind")
		result("left processes behind", prompt)
	case "flood", "rate":
		n := s.n(1000)
		initLine()
		var every time.Duration
		if s.Mode == "rate" && s.Rate > 0 {
			every = time.Duration(float64(time.Second) / s.Rate)
		}
		start := time.Now()
		pre := []byte(`{"type":"assistant","session_id":"` + sessionID + `","message":{"role":"assistant","content":[{"type":"text","text":"`)
		line := make([]byte, 0, 256)
		for i := 0; i < n; i++ {
			if every > 0 {
				if d := time.Until(start.Add(time.Duration(i) * every)); d > 0 {
					time.Sleep(d)
				}
			}
			line = append(line[:0], pre...)
			line = strconv.AppendInt(line, time.Now().UnixNano(), 10)
			line = append(line, `"}]}}`+"\n"...)
			out.Write(line)
		}
		result("done", prompt)
	case "ask", "ask-withdrawn":
		// Each of n requests, about a Bash call made just before as the CLI
		// does, waits for its answer on stdin, then says when it came
		// (wall-clock nanoseconds) and what it was. ask-withdrawn withdraws
		// its first request instead, as the CLI does when a call is aborted.
		initLine()
		for i := range s.n(1) {
			id := "ask-" + strconv.Itoa(i)
			input := map[string]string{"command": "echo " + strconv.Itoa(i)}
			emit(map[string]any{"type": "assistant", "session_id": sessionID, "parent_tool_use_id": nil,
				"message": map[string]any{"role": "assistant", "content": []any{
					map[string]any{"type": "tool_use", "id": "toolu_" + id, "name": "Bash", "input": input}}}})
			emit(map[string]any{"type": "control_request", "request_id": id, "request": map[string]any{
				"subtype": "can_use_tool", "tool_name": "Bash", "tool_use_id": "toolu_" + id, "input": input}})
			if s.Mode == "ask-withdrawn" && i == 0 {
				emit(map[string]any{"type": "control_cancel_request", "request_id": id})
				assistantText("withdrawn")
				continue
			}
			line, err := stdin.ReadBytes('\n')
			if err != nil {
				fmt.Fprintln(os.Stderr, "fakeclaude: no answer:", err)
				os.Exit(3)
			}
			var answer struct {
				Response struct {
					RequestID string `json:"request_id"`
					Response  struct {
						Behavior string `json:"behavior"`
					} `json:"response"`
				} `json:"response"`
			}
			_ = json.Unmarshal(line, &answer)
			assistantText(fmt.Sprintf("%d %s %s", time.Now().UnixNano(), answer.Response.RequestID, answer.Response.Response.Behavior))
		}
		result("asked", prompt)
	case "slow-total":
		initLine()
		for {
			assistantText("tick")
			time.Sleep(100 * time.Millisecond)
		}
	default:
		fmt.Fprintf(os.Stderr, "fakeclaude: unknown mode %q\n", s.Mode)
		os.Exit(2)
	}
}

// n is the script's n, or def when the script gives none: a test that asks
// for 0 or 1 gets exactly that.
func (s script) n(def int) int {
	if s.N == nil {
		return def
	}
	return *s.N
}

func arg(args []string, i int) string {
	if i < len(args) {
		return args[i]
	}
	return ""
}

func writeLine(b []byte) {
	out.Write(append(append([]byte{}, b...), '\n'))
}

func emit(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	writeLine(b)
}

func initLine() {
	cwd, _ := os.Getwd()
	emit(map[string]any{"type": "system", "subtype": "init", "session_id": sessionID, "cwd": cwd,
		"model": "claude-fake", "tools": []string{"Bash", "Read"}, "permissionMode": "default"})
}

func assistantText(text string) {
	emit(map[string]any{"type": "assistant", "session_id": sessionID, "parent_tool_use_id": nil,
		"message": map[string]any{"id": "msg_fake", "type": "message", "role": "assistant", "model": "claude-fake",
			"content": []any{map[string]any{"type": "text", "text": text}}, "stop_reason": nil,
			"usage": map[string]int{"input_tokens": 3, "output_tokens": 5}}})
}

func result(text, prompt string) {
	emit(map[string]any{"type": "result", "subtype": "success", "is_error": false,
		"api_error_status": nil, "result": text, "session_id": sessionID,
		"num_turns": 1, "duration_ms": 12, "duration_api_ms": 10, "total_cost_usd": 0.0012,
		"usage":              map[string]int{"input_tokens": 10, "output_tokens": 20, "cache_creation_input_tokens": 30, "cache_read_input_tokens": 40},
		"permission_denials": []any{}})
	saveTurn(prompt, text)
}

func saveTurn(prompt, reply string) {
	if cfgFile == "" {
		return
	}
	_ = os.MkdirAll(filepath.Dir(cfgFile), 0o700)
	f, err := os.OpenFile(cfgFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	b, _ := json.Marshal(map[string]string{"prompt": prompt, "reply": reply})
	f.Write(append(b, '\n'))
}

// spawn starts this program again in role, in a session of its own,
// sharing stdout, and does not wait for it.
func spawn(role string) int {
	self, err := os.Executable()
	if err != nil {
		panic(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), "FAKECLAUDE_ROLE="+role)
	cmd.Stdout = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		panic(err)
	}
	return cmd.Process.Pid
}

func sleepForever() {
	for {
		time.Sleep(time.Hour)
	}
}
