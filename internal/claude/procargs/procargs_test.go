package procargs

import (
	"encoding/binary"
	"testing"
)

// What macOS's kern.procargs2 returns: the environment is cut out, and a
// marker among the arguments (a tool that greps for it) is not taken for
// one in the environment.
func TestProcargsEnv(t *testing.T) {
	procargs := func(argc int32, rest string) []byte {
		b := binary.LittleEndian.AppendUint32(nil, uint32(argc))
		return append(b, rest...)
	}
	for _, c := range []struct {
		name string
		in   []byte
		env  string
		ok   bool
	}{
		{"env then apple strings", procargs(2, "/bin/sh\x00\x00\x00\x00sh\x00-c\x00HOME=/h\x00OVRLRD_RUN=ab\x00\x00executable_path=/bin/sh\x00"),
			"HOME=/h\x00OVRLRD_RUN=ab\x00", true},
		{"marker only in the arguments", procargs(2, "/usr/bin/grep\x00\x00grep\x00OVRLRD_RUN=ab\x00PATH=/bin\x00\x00"),
			"PATH=/bin\x00", true},
		{"no environment", procargs(1, "/bin/true\x00\x00true\x00\x00apple=1\x00"), "", true},
		{"environment to the end", procargs(1, "/bin/x\x00x\x00A=1\x00"), "A=1\x00", true},
		{"arguments cut short", procargs(3, "/bin/x\x00x\x00y\x00"), "", false},
		{"no path", procargs(1, "/bin/x"), "", false},
		{"too short", []byte{1, 0}, "", false},
	} {
		env, ok := Env(c.in)
		if string(env) != c.env || ok != c.ok {
			t.Errorf("%s: %q %v, want %q %v", c.name, env, ok, c.env, c.ok)
		}
	}
}
