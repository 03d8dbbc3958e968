package claude

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Invalid API key: sk-ant-api03-AbC_dEf-1234567890xyz", "Invalid API key: [REDACTED]"},
		{"Authorization: Bearer abc.DEF-123_456~xyz", "Authorization: Bearer [REDACTED]"},
		{"bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_nat-ure", "bearer [REDACTED]"},
		{"token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig in the log", "token [REDACTED] in the log"},
		{"user alice.smith+tag@example.co.uk failed", "user [EMAIL] failed"},
		{"digest 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 done", "digest [REDACTED] done"},
		{"aws AKIAIOSFODNN7EXAMPLE secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws [REDACTED] secret [REDACTED]"},
		{`{"api_key": "abc123", "password":"hunter2"}`, `{"api_key": "[REDACTED]", "password":"[REDACTED]"}`},
		{"ANTHROPIC_API_KEY=whatever-value next", "ANTHROPIC_API_KEY=[REDACTED] next"},
		{"CLAUDE_CODE_OAUTH_TOKEN=sk-ant-oat01-xyzxyzxyzxyz", "CLAUDE_CODE_OAUTH_TOKEN=[REDACTED]"},
		// What must survive: paths, words, session ids, numbers, usage keys.
		{"Error: ENOENT /usr/local/lib/node_modules/@anthropic-ai/claude-code/cli.js", "Error: ENOENT /usr/local/lib/node_modules/@anthropic-ai/claude-code/cli.js"},
		{"No conversation found with session ID: 1b4e28ba-2fa1-11d2-883f-0016d3cca427", "No conversation found with session ID: 1b4e28ba-2fa1-11d2-883f-0016d3cca427"},
		{"input_tokens: 1234, output_tokens=99, status 529", "input_tokens: 1234, output_tokens=99, status 529"},
		{"", ""},
	}
	for _, tc := range tests {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
	// Nothing of a secret survives, wherever it sits.
	for _, secret := range []string{"sk-ant-api03-" + strings.Repeat("Zz9", 30), "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl"} {
		for _, s := range []string{secret, "x" + secret, "(" + secret + ")", "'" + secret + "'\n"} {
			if got := Redact(s); strings.Contains(got, secret[10:20]) {
				t.Errorf("Redact(%q) = %q", s, got)
			}
		}
	}
}
