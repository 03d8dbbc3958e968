//go:build !linux

package procfs

// HideSelf does nothing outside Linux: macOS has no non-dumpable switch,
// and a process of the same user can read the environment this one started
// with (sysctl kern.procargs2). There (make dev) turns run in Shared mode,
// as this user, and can reach what it can anyway.
func HideSelf() error { return nil }
