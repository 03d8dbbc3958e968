//go:build !linux

package sandbox

import "os"

// Outside Linux there is no /proc to find a turn's processes by user, so
// only Shared mode exists: the claude package's own sweep of the CLI's
// process group and children is all there is (see the README).
const supported = false

func running(int) bool                { return false }
func killUser(int) int                { return 0 }
func killTurn(int) int                { return 0 }
func scrubShared(int) error           { return nil }
func prepareLocks() error             { return nil }
func lockUID(uint32) (*os.File, bool) { return nil, true }
func privateUmask()                   {}

// HideSelf does nothing outside Linux.
func HideSelf() error { return nil }

// Exposed is false outside Linux, where only Shared mode exists.
func Exposed(int) bool { return false }
