package ovrlrd

import "strings"

// JoinSegments is a turn's answer as one text: its segments, each stored as
// its own message, one line apart, as the old server showed them whole.
func JoinSegments(segments []string) string { return strings.Join(segments, "\n") }
