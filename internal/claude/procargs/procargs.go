// Package procargs reads what macOS's kern.procargs2 returns. It is a
// package of its own so that only the macOS build compiles it, while its
// tests run on Linux too.
package procargs

import (
	"bytes"
	"encoding/binary"
)

// Env cuts the environment out of what kern.procargs2 returns for a
// process: argc (a native int32; both macOS architectures are
// little-endian), the executable's path, NUL padding, argc arguments, then
// the environment up to an empty string.
func Env(b []byte) ([]byte, bool) {
	if len(b) < 4 {
		return nil, false
	}
	argc := int(int32(binary.LittleEndian.Uint32(b)))
	rest := b[4:]
	i := bytes.IndexByte(rest, 0)
	if argc < 0 || i < 0 {
		return nil, false
	}
	rest = bytes.TrimLeft(rest[i:], "\x00")
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
