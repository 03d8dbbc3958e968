package web

// ContentSecurityPolicy lets the page load only its own scripts, styles,
// images (and data: images), manifest and API calls: no inline script or
// style, no plugins, no framing, no forms posted anywhere.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// SecurityHeaders are the headers every answer for the web client carries,
// whoever serves it: Handler under make dev, and CloudFront's response
// headers policy in AWS (a template test keeps the two equal). Browsers
// ignore Strict-Transport-Security over plain HTTP, so make dev's loopback
// is unaffected. The map is the caller's own.
func SecurityHeaders() map[string]string {
	return map[string]string{
		"Content-Security-Policy":    ContentSecurityPolicy,
		"X-Content-Type-Options":     "nosniff",
		"X-Frame-Options":            "DENY",
		"Referrer-Policy":            "no-referrer",
		"Permissions-Policy":         "camera=(), microphone=(), geolocation=()",
		"Cross-Origin-Opener-Policy": "same-origin",
		"Strict-Transport-Security":  "max-age=63072000",
	}
}
