package claude

import (
	"math"
	"regexp"
)

// A tool can reach the CLI's stdout only if the CLI is readable by the user
// it runs as (see the sandbox package); vet is the second line: it accepts
// of each run the lines a genuine CLI prints once, and only in their place.
// Whatever breaks that is tampering: counted in Exit.Tampered, logged by the
// caller, and never delivered.

// sessionIDPattern is how the CLI names sessions; anything else in a
// session id would reach a path (--resume, the transcript's file name).
var sessionIDPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// Bounds of a believable result: above them the numbers were made up.
const (
	maxTokens  = 1 << 40
	maxCostUSD = 10_000
)

// vetter follows one run's lines.
type vetter struct {
	sawInit, sawResult bool
	asks               bool // the run asks (Options.Asks): the CLI may make control requests
}

// check vets ev in place. It returns why ev is suspect ("" if it is not),
// and whether it must be dropped; the others are delivered with the suspect
// parts removed.
func (v *vetter) check(ev *Event) (why string, drop bool) {
	switch {
	case v.sawResult:
		return "a line after the result", true
	case ev.Type == "system" && ev.Subtype == "init":
		if v.sawInit {
			return "a second init", true
		}
		v.sawInit = true
		if !sessionIDPattern.MatchString(ev.SessionID) {
			return "an init whose session id is not a UUID", true
		}
	case (ev.Ask != nil || ev.Withdrawn != "") && !v.asks:
		return "a control request the run did not invite", true
	case ev.Ask != nil && ev.Ask.RequestID == "":
		return "a control request without an id", true
	case ev.Result != nil:
		v.sawResult = true
		return vetResult(ev), false
	}
	return "", false
}

func vetResult(ev *Event) string {
	r := ev.Result
	why := ""
	if r.SessionID != "" && !sessionIDPattern.MatchString(r.SessionID) {
		r.SessionID, ev.SessionID = "", ""
		why = "a result whose session id is not a UUID"
	}
	u := r.Usage
	for _, n := range []int64{u.InputTokens, u.OutputTokens, u.CacheCreationInputTokens, u.CacheReadInputTokens} {
		if n < 0 || n > maxTokens {
			r.Usage, why = Usage{}, "a result with impossible usage"
		}
	}
	if c := r.TotalCostUSD; c < 0 || c > maxCostUSD || math.IsNaN(c) {
		r.TotalCostUSD, why = 0, "a result with an impossible cost"
	}
	return why
}
