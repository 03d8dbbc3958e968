package anthropicfake

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
)

func (m Message) blocks() []Block {
	var s string
	if json.Unmarshal(m.Content, &s) == nil {
		return []Block{{Type: "text", Text: s}}
	}
	var blocks []Block
	json.Unmarshal(m.Content, &blocks)
	return blocks
}

// Text is the string content, or the concatenated text of the text blocks
// (tool results and other blocks are left out).
func (m Message) Text() string { return m.text(false) }

func (m Message) text(skipReminders bool) string {
	var b strings.Builder
	for _, blk := range m.blocks() {
		if blk.Type == "text" && !(skipReminders && strings.HasPrefix(strings.TrimSpace(blk.Text), "<system-reminder>")) {
			b.WriteString(blk.Text)
		}
	}
	return b.String()
}

// ToolResults returns the message's tool_result blocks.
func (m Message) ToolResults() []Block {
	return slices.DeleteFunc(m.blocks(), func(b Block) bool { return b.Type != "tool_result" })
}

// ResultText is the text of a tool_result block: its string content, or the
// concatenated text of its text blocks.
func (b Block) ResultText() string { return Message{Content: b.Content}.Text() }

// LastUser returns the request's last user message.
func (r Request) LastUser() (Message, bool) {
	for _, m := range slices.Backward(r.Messages) {
		if m.Role == "user" {
			return m, true
		}
	}
	return Message{}, false
}

// Prompt is the text of the last user message without the CLI's
// <system-reminder> blocks: on a fresh turn, the user's prompt. It is empty
// when that message only holds tool results.
func (r Request) Prompt() string {
	m, _ := r.LastUser()
	return m.text(true)
}

// ToolResults returns the text of every tool result the model was sent,
// in order.
func (s *Server) ToolResults() []string {
	var out []string
	for _, r := range s.Requests() {
		m, _ := r.LastUser()
		for _, res := range m.ToolResults() {
			out = append(out, res.ResultText())
		}
	}
	return out
}

// Say answers every request with one text block.
func Say(text string) Script {
	return func(Request) Reply { return say(text) }
}

func say(text string) Reply { return Reply{Blocks: []ReplyBlock{Text(text)}} }

// ToolTurn answers a request whose last user message holds tool results with
// after, and any other request (a fresh prompt) with first: one tool round
// trip per prompt.
func ToolTurn(first, after Reply) Script {
	return func(r Request) Reply {
		if m, _ := r.LastUser(); len(m.ToolResults()) > 0 {
			return after
		}
		return first
	}
}

// DemoTitle is what Demo answers to a title prompt.
const DemoTitle = "Exploring the workspace"

var titleWord = regexp.MustCompile(`(?i)\btitle\b`)

// Demo is the offline demo model for newcomers and the local dev server.
//
//   - A prompt containing the word "title" (the service's title run) gets
//     DemoTitle.
//   - Any other fresh prompt gets a sentence and a Bash call of the
//     read-only `ls -a`, which the CLI runs without approval in its default
//     permission mode (the pinned CLI offers no Glob, Grep or LS tool).
//   - A request whose last user message holds a tool result gets a short
//     summary quoting the tool's output.
//   - A prompt "RUN: <command>" is answered as Commands does: one Bash call
//     of the command (which the user must approve), then "Done.". The
//     README's project walkthrough edits a file so.
func Demo() Script {
	commands := Commands()
	return func(r Request) Reply {
		if !titleWord.MatchString(r.Prompt()) && askedCommand(r) {
			return commands(r)
		}
		last, _ := r.LastUser()
		if results := last.ToolResults(); len(results) > 0 {
			out := strings.TrimSpace(results[0].ResultText())
			if len(out) > 1500 {
				out = out[:1500] + "\n…"
			}
			if results[0].IsError {
				return say("I could not list the workspace: " + out)
			}
			return say("Here is what the working directory holds:\n\n```\n" + out + "\n```\n\n" +
				"(This answer comes from the offline demo model, not from Claude.)")
		}
		if titleWord.MatchString(r.Prompt()) {
			return say(DemoTitle)
		}
		return Reply{Blocks: []ReplyBlock{
			Text("I'm the offline demo model. Let me look at the files in the working directory."),
			ToolUse("Bash", map[string]string{"command": "ls -a", "description": "List the files in the working directory"}),
		}}
	}
}

// askedCommand reports whether the turn's prompt was a command for
// Commands: "RUN: ..." (the demo runs it too, to show an edit).
func askedCommand(r Request) bool {
	for _, m := range r.Messages {
		if m.Role == "user" && strings.HasPrefix(strings.TrimSpace(m.text(true)), CommandPrefix) {
			return true
		}
	}
	return false
}

// CommandPrefix starts a prompt that Commands answers with a Bash call.
const CommandPrefix = "RUN: "

// Commands is a model that does what the prompt says: a prompt
// "RUN: <command>" gets one Bash call of <command>, and the tool's result
// gets the reply "Done." (the test reads the result from Requests); anything
// else gets "OK.". It stands in for a model steered by a hostile user or
// file, in the tests of what tools can reach.
func Commands() Script {
	return func(r Request) Reply {
		last, _ := r.LastUser()
		cmd, isCommand := strings.CutPrefix(strings.TrimSpace(r.Prompt()), CommandPrefix)
		switch {
		case len(last.ToolResults()) > 0:
			return say("Done.")
		case isCommand:
			return Reply{Blocks: []ReplyBlock{ToolUse("Bash", map[string]string{"command": cmd, "description": "Run the command"})}}
		}
		return say("OK.")
	}
}
