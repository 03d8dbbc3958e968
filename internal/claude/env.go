package claude

import (
	"os"
	"strconv"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// DefaultPath is the CLI's PATH.
const DefaultPath = "/usr/local/bin:/usr/bin:/bin"

// Env is what the CLI's environment is built from (see Environment).
//
// It holds no credential of ours. The CLI reaches the model through a
// loopback proxy (BaseURL) that adds the real key or signature; the CLI
// only knows Token, a value the proxy accepts for one turn. Whatever a tool
// finds in the CLI's environment is worth nothing after the turn.
type Env struct {
	Home      string // HOME
	ConfigDir string // CLAUDE_CONFIG_DIR
	TempDir   string // TMPDIR, the turn's own

	Provider  ovrlrd.Provider
	BaseURL   string // the proxy's URL for this turn
	Token     string // the turn's token, given where the CLI expects its key
	AWSRegion string // Bedrock

	// Model, if set, is the model of the turn (ANTHROPIC_MODEL). With
	// Bedrock, where the role may be granted that model alone, it is the
	// only one: the background, sub-agent and per-family defaults name it
	// too. Elsewhere those keep their cheaper defaults.
	Model string

	MaxRetries int // CLAUDE_CODE_MAX_RETRIES, if > 0
}

// Environment builds the CLI's whole environment from e: PATH, HOME,
// CLAUDE_CONFIG_DIR, TMPDIR, the proxy and the turn's token in the
// provider's variables, CLAUDE_CODE_MAX_RETRIES, the
// switches that keep the CLI offline except for model calls
// (CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC, DISABLE_TELEMETRY,
// DISABLE_AUTOUPDATER, DISABLE_ERROR_REPORTING), IS_SANDBOX=1 when running
// as root. Empty values are left out. Nothing comes from this
// process's environment; Start adds the run marker (RunMarkerVar).
func Environment(e Env) []string {
	env := make([]string, 0, 20)
	add := func(k, v string) {
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	add("PATH", DefaultPath)
	add("HOME", e.Home)
	add("CLAUDE_CONFIG_DIR", e.ConfigDir)
	add("TMPDIR", e.TempDir)
	add("ANTHROPIC_MODEL", e.Model)
	switch e.Provider {
	case ovrlrd.Anthropic, "":
		add("ANTHROPIC_BASE_URL", e.BaseURL)
		add("ANTHROPIC_API_KEY", e.Token)
	case ovrlrd.OAuth:
		add("ANTHROPIC_BASE_URL", e.BaseURL)
		add("CLAUDE_CODE_OAUTH_TOKEN", e.Token)
	case ovrlrd.Bedrock:
		// The proxy signs; the token is in the URL's path.
		add("CLAUDE_CODE_USE_BEDROCK", "1")
		add("CLAUDE_CODE_SKIP_BEDROCK_AUTH", "1")
		add("ANTHROPIC_BEDROCK_BASE_URL", e.BaseURL)
		add("AWS_REGION", e.AWSRegion)
		for _, name := range otherModelVars {
			add(name, e.Model)
		}
	}
	if e.MaxRetries > 0 {
		add("CLAUDE_CODE_MAX_RETRIES", strconv.Itoa(e.MaxRetries))
	}
	for _, name := range []string{"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "DISABLE_TELEMETRY", "DISABLE_AUTOUPDATER", "DISABLE_ERROR_REPORTING"} {
		add(name, "1")
	}
	if os.Geteuid() == 0 {
		add("IS_SANDBOX", "1") // the CLI refuses some modes as root without it
	}
	return env
}

// otherModelVars are the pinned CLI's settings that choose a model besides
// ANTHROPIC_MODEL.
var otherModelVars = []string{
	"ANTHROPIC_SMALL_FAST_MODEL", "CLAUDE_CODE_SUBAGENT_MODEL",
	"ANTHROPIC_DEFAULT_OPUS_MODEL", "ANTHROPIC_DEFAULT_SONNET_MODEL",
	"ANTHROPIC_DEFAULT_HAIKU_MODEL", "ANTHROPIC_DEFAULT_FABLE_MODEL",
}
