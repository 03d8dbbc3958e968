package transcript

// Entries outside the message chain. The CLI reads a fixed list of types
// and ignores any other, so an unknown type (from a newer CLI at the desk)
// is harmless and accepted. Of the known ones, a few restore the state the
// session ran in, which no cloud session can share; those are refused
// unless they restore nothing. A permission mode is not among them: the
// pinned CLI does not take it back in print mode (TestRealCLIRunState), and
// desks switch modes all the time.

// other checks an entry outside the chain; summaries and titles are kept
// for the session's title.
func (p *parser) other(o object, typ string) string {
	switch typ {
	case "summary":
		text, ok := o.str("summary")
		if !ok {
			return "has a summary that is not a string"
		}
		if leaf, ok := o.str("leafUuid"); ok {
			p.summaries = append(p.summaries, summary{leaf, text})
		}
	case "custom-title", "ai-title":
		key := map[string]string{"custom-title": "customTitle", "ai-title": "aiTitle"}[typ]
		text, ok := o.str(key)
		if !ok {
			return "has a title that is not a string"
		}
		p.titles[typ] = text
	case "mode":
		// The CLI writes "normal"; "coordinator" is taken back, and takes
		// the tools away from the resumed run (TestRealCLIRunState).
		if m, _ := o.str("mode"); m != "normal" {
			return "sets a mode the cloud does not run"
		}
	case "worktree-state":
		// It and relocated name folders of the desk, which the CLI keeps as
		// the session's state and writes back. The pinned CLI does not move
		// to them in print mode (measured), but nothing from a transcript
		// may be a path. null is what leaving a worktree writes.
		if !o.isNull("worktreeSession") {
			return "names a worktree, which the cloud does not have"
		}
	case "relocated":
		return "names another working directory for the session"
	case "agent-setting":
		return "selects an agent, which the cloud does not run"
	case "isolation-latch":
		return "sets an isolation the cloud does not run"
	case "bridge-session":
		if v := string(o["bridgeSessionId"]); v != "" && v != `""` && v != "null" {
			return "links a remote-control session, which the cloud does not run"
		}
	}
	return ""
}
