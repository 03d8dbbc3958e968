//go:build !linux

package sandbox

import "os"

// Outside Linux (macOS, for make dev) there is no /proc to find a turn's
// processes by their user, so Detect gives Shared mode only, whoever runs
// the server: turns run as the server's user, and the claude package's own
// sweep (the CLI's process group, the run's marker, descent) is all there
// is (see the README). Nothing below is reached in Shared mode but Exposed.
const supported = false

func running(int) bool                { return false }
func killUser(int) int                { return 0 }
func killTurn(int) int                { return 0 }
func scrubShared(int)                 {}
func prepareLocks() error             { return nil }
func lockUID(uint32) (*os.File, bool) { return nil, true }

// Exposed is false outside Linux: turns ask it only outside Shared mode,
// which is the only mode here.
func Exposed(int) bool { return false }
