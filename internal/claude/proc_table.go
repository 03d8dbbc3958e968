//go:build linux || darwin

package claude

import "bytes"

// procInfo is what the process table says about a process.
type procInfo struct {
	pid, ppid, pgrp, sid int
	state                byte   // as Linux spells it: 'Z' zombie, 'X' dead; anything else is running
	start                uint64 // start time, in the table's own unit: tells a reused pid apart
}

// procTable reads the system's process table: /proc on Linux, sysctl on
// macOS. The supervision that needs nothing more (proc_supervise.go) is
// the same code on both.
type procTable interface {
	// all lists every process, zombies included.
	all() []procInfo
	// stat reads one process.
	stat(pid int) (procInfo, bool)
	// environ returns the environment pid started with, as NUL-terminated
	// VAR=value strings. The result may live in *buf, until the next call
	// with it.
	environ(pid int, buf *[]byte) ([]byte, bool)
}

// procargsEnv cuts the environment out of what macOS's kern.procargs2
// returns for a process: argc (a native int32), the executable's path, NUL
// padding, argc arguments, then the environment up to an empty string. It
// lives here rather than in the darwin file so that Linux tests read it.
func procargsEnv(b []byte) ([]byte, bool) {
	if len(b) < 4 {
		return nil, false
	}
	// Both macOS architectures are little-endian.
	argc := int(int32(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24))
	rest := b[4:]
	i := bytes.IndexByte(rest, 0)
	if argc < 0 || i < 0 {
		return nil, false
	}
	rest = rest[i:]
	for len(rest) > 0 && rest[0] == 0 {
		rest = rest[1:]
	}
	for ; argc > 0; argc-- {
		i := bytes.IndexByte(rest, 0)
		if i < 0 {
			return nil, false
		}
		rest = rest[i+1:]
	}
	if end := bytes.Index(rest, []byte{0, 0}); end >= 0 {
		rest = rest[:end+1]
	}
	if len(rest) > 0 && rest[0] == 0 {
		return nil, true // no environment at all
	}
	return rest, true
}
