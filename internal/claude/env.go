package claude

import (
	"os"
	"strconv"
	"time"
)

// Provider is where the CLI sends its model requests.
type Provider string

const (
	Anthropic Provider = "anthropic" // Credential is ANTHROPIC_API_KEY
	OAuth     Provider = "oauth"     // Credential is CLAUDE_CODE_OAUTH_TOKEN
	Bedrock   Provider = "bedrock"   // the AWS fields; no Credential
)

// DefaultPath is the PATH given to the CLI when Env.Path is empty.
const DefaultPath = "/usr/local/bin:/usr/bin:/bin"

// Env is what the CLI's environment is built from (see Environment).
type Env struct {
	Path      string // PATH; DefaultPath if empty
	Home      string // HOME
	ConfigDir string // CLAUDE_CONFIG_DIR

	Provider   Provider
	Credential string // the API key or OAuth token, per Provider

	// Bedrock: the region and the function role's credentials (on Lambda,
	// this process's AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
	// AWS_SESSION_TOKEN).
	AWSRegion          string
	AWSAccessKeyID     string
	AWSSecretAccessKey string
	AWSSessionToken    string

	BaseURL    string        // ANTHROPIC_BASE_URL, if set
	MaxRetries int           // CLAUDE_CODE_MAX_RETRIES, if > 0
	APITimeout time.Duration // API_TIMEOUT_MS, if > 0

	// Extra entries ("KEY=value") the caller vouches for, appended last
	// (TMPDIR, LANG, a test's script).
	Extra []string
}

// Environment builds the CLI's whole environment from e: PATH, HOME,
// CLAUDE_CONFIG_DIR, the provider's credential, ANTHROPIC_BASE_URL,
// CLAUDE_CODE_MAX_RETRIES, API_TIMEOUT_MS, the switches that keep the CLI
// offline except for model calls (CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC,
// DISABLE_TELEMETRY, DISABLE_AUTOUPDATER, DISABLE_ERROR_REPORTING),
// IS_SANDBOX=1 when running as root, then e.Extra. Empty values are left
// out. Nothing comes from this process's environment; Start adds the run
// marker (RunMarkerVar).
func Environment(e Env) []string {
	env := make([]string, 0, 16+len(e.Extra))
	add := func(k, v string) {
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	path := e.Path
	if path == "" {
		path = DefaultPath
	}
	add("PATH", path)
	add("HOME", e.Home)
	add("CLAUDE_CONFIG_DIR", e.ConfigDir)
	switch e.Provider {
	case Anthropic, "":
		add("ANTHROPIC_API_KEY", e.Credential)
	case OAuth:
		add("CLAUDE_CODE_OAUTH_TOKEN", e.Credential)
	case Bedrock:
		add("CLAUDE_CODE_USE_BEDROCK", "1")
		add("AWS_REGION", e.AWSRegion)
		add("AWS_ACCESS_KEY_ID", e.AWSAccessKeyID)
		add("AWS_SECRET_ACCESS_KEY", e.AWSSecretAccessKey)
		add("AWS_SESSION_TOKEN", e.AWSSessionToken)
	}
	add("ANTHROPIC_BASE_URL", e.BaseURL)
	if e.MaxRetries > 0 {
		add("CLAUDE_CODE_MAX_RETRIES", strconv.Itoa(e.MaxRetries))
	}
	if e.APITimeout > 0 {
		add("API_TIMEOUT_MS", strconv.FormatInt(e.APITimeout.Milliseconds(), 10))
	}
	add("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
	add("DISABLE_TELEMETRY", "1")
	add("DISABLE_AUTOUPDATER", "1")
	add("DISABLE_ERROR_REPORTING", "1")
	if os.Geteuid() == 0 {
		add("IS_SANDBOX", "1") // the CLI refuses some modes as root without it
	}
	return append(env, e.Extra...)
}
