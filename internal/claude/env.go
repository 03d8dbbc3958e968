package claude

import (
	"os"
	"strconv"
	"time"
)

// Provider is where the CLI sends its model requests.
type Provider string

const (
	Anthropic Provider = "anthropic" // the CLI runs with an API key
	OAuth     Provider = "oauth"     // the CLI runs with an OAuth token
	Bedrock   Provider = "bedrock"   // the CLI speaks Bedrock's API
)

// DefaultPath is the PATH given to the CLI when Env.Path is empty.
const DefaultPath = "/usr/local/bin:/usr/bin:/bin"

// Env is what the CLI's environment is built from (see Environment).
//
// It holds no credential of ours. The CLI reaches the model through a
// loopback proxy (BaseURL) that adds the real key or signature; the CLI
// only knows Token, a value the proxy accepts for one turn. Whatever a tool
// finds in the CLI's environment is worth nothing after the turn.
type Env struct {
	Path      string // PATH; DefaultPath if empty
	Home      string // HOME
	ConfigDir string // CLAUDE_CONFIG_DIR
	TempDir   string // TMPDIR, the turn's own

	Provider  Provider
	BaseURL   string // the proxy's URL for this turn
	Token     string // the turn's token, given where the CLI expects its key
	AWSRegion string // Bedrock

	// Model, if set, is the model of the turn (ANTHROPIC_MODEL). With
	// Bedrock, where the role may be granted that model alone, it is the
	// only one: the background, sub-agent and per-family defaults name it
	// too. Elsewhere those keep their cheaper defaults.
	Model string

	MaxRetries int           // CLAUDE_CODE_MAX_RETRIES, if > 0
	APITimeout time.Duration // API_TIMEOUT_MS, if > 0

	// Extra entries ("KEY=value") the caller vouches for, appended last
	// (LANG, a test's script).
	Extra []string
}

// Environment builds the CLI's whole environment from e: PATH, HOME,
// CLAUDE_CONFIG_DIR, TMPDIR, the proxy and the turn's token in the
// provider's variables, CLAUDE_CODE_MAX_RETRIES, API_TIMEOUT_MS, the
// switches that keep the CLI offline except for model calls
// (CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC, DISABLE_TELEMETRY,
// DISABLE_AUTOUPDATER, DISABLE_ERROR_REPORTING), IS_SANDBOX=1 when running
// as root, then e.Extra. Empty values are left out. Nothing comes from this
// process's environment; Start adds the run marker (RunMarkerVar).
func Environment(e Env) []string {
	env := make([]string, 0, 20+len(e.Extra))
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
	add("TMPDIR", e.TempDir)
	switch e.Provider {
	case Anthropic, "":
		add("ANTHROPIC_BASE_URL", e.BaseURL)
		add("ANTHROPIC_API_KEY", e.Token)
	case OAuth:
		add("ANTHROPIC_BASE_URL", e.BaseURL)
		add("CLAUDE_CODE_OAUTH_TOKEN", e.Token)
	case Bedrock:
		// The proxy signs; the token is in the URL's path.
		add("CLAUDE_CODE_USE_BEDROCK", "1")
		add("CLAUDE_CODE_SKIP_BEDROCK_AUTH", "1")
		add("ANTHROPIC_BEDROCK_BASE_URL", e.BaseURL)
		add("AWS_REGION", e.AWSRegion)
	}
	add("ANTHROPIC_MODEL", e.Model)
	if e.Provider == Bedrock {
		for _, name := range otherModelVars {
			add(name, e.Model)
		}
	}
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

// otherModelVars are the pinned CLI's settings that choose a model besides
// ANTHROPIC_MODEL.
var otherModelVars = []string{
	"ANTHROPIC_SMALL_FAST_MODEL", "CLAUDE_CODE_SUBAGENT_MODEL",
	"ANTHROPIC_DEFAULT_OPUS_MODEL", "ANTHROPIC_DEFAULT_SONNET_MODEL",
	"ANTHROPIC_DEFAULT_HAIKU_MODEL", "ANTHROPIC_DEFAULT_FABLE_MODEL",
}
