// Package config builds the one configuration value a function runs with. It
// is read once, at init: settings from environment variables, secrets from SSM
// Parameter Store (dev, prod) or from the environment (local). Anything wrong
// stops init with one error listing every problem, so a broken deploy is
// fixed in one round rather than one cold start per problem. No secret has a
// default: a forgotten one must stop the process, never open it.
package config

import (
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"log/slog"
	"time"
)

// Function says which Lambda function is loading, and so which secrets it
// needs.
type Function string

const (
	Auth   Function = "auth"
	Chat   Function = "chat"
	Stream Function = "stream"
	// All is the local development server, which serves every route.
	All Function = "all"
)

// RunsTurns reports whether f runs Claude turns, and so needs the Claude
// credential, and may push and check CloudFront's origin header.
func (f Function) RunsTurns() bool { return f == Stream || f == All }

// Stage is the deployment stage.
type Stage string

const (
	Local Stage = "local"
	Dev   Stage = "dev"
	Prod  Stage = "prod"
)

// Config is the whole configuration. Load returns it by value and nothing
// changes it afterwards; its slices must be treated as read-only.
type Config struct {
	Function Function
	Stage    Stage
	// InLambda is true inside a Lambda execution environment, which runs
	// one invocation at a time.
	InLambda bool
	Region   string // AWS_REGION
	LogLevel slog.Level
	// ListenAddr is where the local server listens; Lambda ignores it.
	ListenAddr  string
	CORSOrigins []string // exact origins, scheme://host[:port]

	TableName string
	// EventLogTTL is how long a turn's streamed events are kept for
	// clients that reattach.
	EventLogTTL time.Duration
	// DynamoDBEndpoint and S3Endpoint point at local stand-ins; empty means
	// AWS. Never set in prod.
	DynamoDBEndpoint string
	S3Endpoint       string
	// LocalAWSKey is the access key the local stand-ins are called with
	// (LOCAL_AWS_KEY, local only; "local" if unset). make dev generates one:
	// DynamoDB Local keeps a database per key, and its S3 stand-in refuses
	// other keys, so a tool on the machine cannot read them.
	LocalAWSKey    Secret
	SessionsBucket string // Claude transcripts and workspaces
	SSMPrefix      string // e.g. /ovrlrd/prod; empty in local
	// StreamFunction is the function the chat function starts buffered
	// turns in (dev, prod); local runs them in process.
	StreamFunction string

	// JWTKeys sign (the first) and verify (all) session tokens.
	JWTKeys KeyRing
	// APIKey is the app's shared key. It is zero only in local, where an
	// unset key leaves the API open.
	APIKey Secret
	// OriginSecrets are the values of the header CloudFront adds to reach
	// the stream function's URL: the current one and, while it rolls, the
	// previous one. None means not configured. Loaded by Stream and All.
	OriginSecrets []Secret
	// OriginSecretVersion is the SSM version of the current origin secret
	// the deployment names, logged at init so a rollout can be followed.
	OriginSecretVersion string

	SignIn   SignIn
	Sessions Sessions
	Limits   Limits
	APNs     APNs
	Claude   Claude
	Projects Projects
}

// Projects configures users' git projects.
type Projects struct {
	// KMSKeyID seals the projects' access tokens. Empty turns projects
	// off, which only the local stage allows.
	KMSKeyID    string
	KMSEndpoint string // a local KMS stand-in; empty means AWS
	// MaxBytes bounds what one project may bring in: the pack a clone
	// receives, and the files it checks out.
	MaxBytes int64
	// AllowLoopback lets a repository URL reach 127.0.0.1: the local
	// stage's git server. Private and link-local addresses stay refused.
	AllowLoopback bool
	// CABundle is extra trusted roots for git hosts: in the local stage,
	// the PEM file SSL_CERT_FILE names, read here because Go on macOS
	// does not consult that variable.
	CABundle []byte
}

// ProjectsEnabled reports whether users may add projects.
func (c Config) ProjectsEnabled() bool { return c.Projects.KMSKeyID != "" }

// SignIn governs Sign in with Apple and who may create an account.
type SignIn struct {
	// BundleIDs are the app's: accepted audiences of identity tokens, the
	// first also the APNs topic.
	BundleIDs []string
	// ServicesIDs are the web client's (Sign in with Apple on the web):
	// accepted audiences too, never an APNs topic.
	ServicesIDs      []string
	JWKSURL          string
	ApprovedEmails   []string // lowercased
	ApprovedAppleIDs []string // Apple "sub" values, exact
	AllowOpenSignup  bool
}

// APNs configures push notifications (token auth with a .p8 key).
type APNs struct {
	KeyID  string
	TeamID string
	Key    Secret // PEM text of the .p8 key; loaded by Stream and All
	Host   string // override of Apple's host, e.g. a loopback stand-in
	// Environment is where a device token sent with sign-in is registered:
	// the app does not say, and App Store builds use production.
	Environment string
}

// PushEnabled reports whether push notifications can be sent. When false the
// caller logs one warning and carries on without push.
func (c Config) PushEnabled() bool {
	return c.APNs.KeyID != "" && c.APNs.TeamID != "" && !c.APNs.Key.IsZero()
}

// Claude configures the Claude Code CLI runs.
type Claude struct {
	Path           string // executable name or absolute path
	WorkRoot       string
	ConfigRoot     string // CLAUDE_CONFIG_DIR parent
	AdditionalDirs []string
	AllowedTools   []string
	Timeout        time.Duration // a whole turn
	IdleTimeout    time.Duration // silence on stdout
	// ApprovalTimeout is how long a live approval request waits for the
	// user's answer.
	ApprovalTimeout time.Duration
	MaxRetries      int
	Provider        ovrlrd.Provider
	BaseURL         string // ANTHROPIC_BASE_URL; empty means Anthropic's
	// Model pins every model request of a turn (ANTHROPIC_MODEL); empty
	// leaves the choice to the CLI.
	Model string
	// DailyBudgetUSD refuses new turns once a user's UTC day has cost this
	// much (0: no budget).
	DailyBudgetUSD float64
	// WorkspaceMaxBytes caps a conversation folder saved to S3.
	WorkspaceMaxBytes int64
	// ImportMaxMessages caps the messages of a session imported from the
	// terminal.
	ImportMaxMessages int
	// Credential is the ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN,
	// depending on Provider. Loaded by Stream and All only. Only the model
	// proxy holds it; the CLI never sees it.
	Credential Secret
	// SandboxUIDs is the range of user ids a root server runs each turn's
	// CLI as, one per turn (SANDBOX_UIDS, "first-last").
	SandboxUIDs [2]uint32
}

// LocalUploadKeyID is the access key id a local server presigns uploads
// with, its secret being LocalAWSKey: a presigned URL shows its key id to
// whoever holds it, and LocalAWSKey's own id is the secret itself. The S3
// stand-in of make dev lets this id only PUT an upload whose signature it
// checks.
const LocalUploadKeyID = "ovrlrd-local-upload"
