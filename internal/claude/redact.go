package claude

import (
	"regexp"
	"strings"
	"unicode"
)

const redacted = "[REDACTED]"

var (
	// key=value and "key": "value" where the key names a secret.
	reSecretKV = regexp.MustCompile(`(?i)((?:api[_-]?key|token|secret|password|passwd|credential|authorization|x-api-key|session[_-]?token|access[_-]?key(?:[_-]?id)?)["']?\s*[:=]\s*["']?(?:(?:bearer|basic)\s+)?)([^\s"',;}&]+)`)
	// Authorization schemes.
	reAuthScheme = regexp.MustCompile(`(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}`)
	// Anthropic and other sk- keys.
	reSK = regexp.MustCompile(`sk-ant-[A-Za-z0-9_-]{4,}|\bsk-[A-Za-z0-9_-]{16,}`)
	// JSON Web Tokens.
	reJWT = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`)
	// AWS access key ids.
	reAWSKey = regexp.MustCompile(`\b(?:AKIA|ASIA)[A-Z0-9]{16}\b`)
	reEmail  = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`)
	// Long hex runs (keys, digests), and long base64 runs; the latter only
	// with upper and lower case letters and digits mixed, which spares
	// paths and words.
	reHex    = regexp.MustCompile(`\b[0-9A-Fa-f]{32,}\b`)
	reBase64 = regexp.MustCompile(`[A-Za-z0-9+/_-]{32,}={0,2}`)
)

// Redact removes from s what looks like a secret or personal data, so that
// CLI stderr and output samples can be logged: sk-ant-… keys, Bearer/Basic
// credentials, JWTs, AWS key ids, secret-named key=value pairs, e-mail
// addresses, and long hex or base64 runs. It errs on the side of removing.
func Redact(s string) string {
	if s == "" {
		return s
	}
	s = reSK.ReplaceAllLiteralString(s, redacted)
	s = reJWT.ReplaceAllLiteralString(s, redacted)
	s = reAuthScheme.ReplaceAllString(s, "$1 "+redacted)
	s = reSecretKV.ReplaceAllString(s, "${1}"+redacted)
	s = reAWSKey.ReplaceAllLiteralString(s, redacted)
	s = reEmail.ReplaceAllLiteralString(s, "[EMAIL]")
	s = reHex.ReplaceAllLiteralString(s, redacted)
	s = reBase64.ReplaceAllStringFunc(s, func(m string) string {
		if strings.ContainsFunc(m, unicode.IsUpper) && strings.ContainsFunc(m, unicode.IsLower) && strings.ContainsFunc(m, unicode.IsDigit) {
			return redacted
		}
		return m
	})
	return s
}
