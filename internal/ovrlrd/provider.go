package ovrlrd

// Provider is where the Claude Code CLI sends its model requests.
type Provider string

const (
	Anthropic Provider = "anthropic" // ANTHROPIC_API_KEY
	OAuth     Provider = "oauth"     // CLAUDE_CODE_OAUTH_TOKEN
	Bedrock   Provider = "bedrock"   // the function's IAM role; no secret
)
