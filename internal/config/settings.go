package config

import (
	"fmt"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Local-only defaults, so the local server runs with nothing but
// JWT_SECRET: dev and prod must name these.
const (
	DefaultRegion      = "us-east-1"
	DefaultLocalTable  = "ovrlrd"
	DefaultLocalBucket = "ovrlrd-sessions"
)

const defaultListenAddr = "127.0.0.1:3000"

// DefaultAllowedTools are Claude Code's standard tools.
var DefaultAllowedTools = []string{
	"Bash", "Edit", "Glob", "Grep", "LS", "MultiEdit", "NotebookEdit",
	"NotebookRead", "Read", "Task", "TodoWrite", "WebFetch", "WebSearch", "Write",
}

// DefaultSandboxUIDs are the user ids a root server gives turns: far above
// any account or container's subordinate ids.
var DefaultSandboxUIDs = [2]uint32{1_700_000_000, 1_700_999_999}

// maxTimeout is Lambda's own limit: no turn can outlive the invocation.
const maxTimeout = 15 * time.Minute

var (
	regionPattern    = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	tablePattern     = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)
	bucketPattern    = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	ssmPrefixPattern = regexp.MustCompile(`^(/[A-Za-z0-9_.-]+)+$`)
	bundlePattern    = regexp.MustCompile(`^[A-Za-z0-9.-]+$`)
	appleIDPattern   = regexp.MustCompile(`^[A-Z0-9]{10}$`) // APNs key and team ids
	// A full model id: an alias (sonnet, opus) would name itself as the
	// model behind it when the CLI is pinned.
	modelPattern    = regexp.MustCompile(`^[a-z0-9.:-]*claude[a-z0-9.:-]*$`)
	versionPattern  = regexp.MustCompile(`^[0-9]+$`)
	providerPattern = regexp.MustCompile(`^(?i)(anthropic|oauth|bedrock)$`)
	apnsEnvPattern  = regexp.MustCompile(`^(sandbox|production)$`)
)

func (c *Config) readSettings(r *reader) {
	local := c.Stage == Local
	prod := c.Stage != Local && c.Stage != Dev // an unknown stage gets the strictest checks
	// deployed reads a setting dev and prod must name (when need holds) and
	// local may leave to localDef.
	deployed := func(name, why string, need bool, localDef string, p *regexp.Regexp) string {
		if local {
			return r.str(name, localDef, p)
		}
		v := r.str(name, "", p)
		if v == "" && need {
			r.problemf("%s: required in dev and prod%s", name, why)
		}
		return v
	}

	c.Region = deployed("AWS_REGION", "", true, DefaultRegion, regionPattern)
	c.LogLevel = r.logLevel()
	c.ListenAddr = r.listenAddr()
	c.CORSOrigins = r.origins(prod)

	c.TableName = deployed("TABLE_NAME", "", true, DefaultLocalTable, tablePattern)
	c.EventLogTTL = r.duration("EVENT_LOG_TTL", 24*time.Hour, 30*24*time.Hour)
	if c.EventLogTTL < time.Hour {
		// Shorter, the sweeper could delete a running turn's first events.
		r.problemf("EVENT_LOG_TTL: %s is shorter than a turn may last; use at least 1h", c.EventLogTTL)
	}
	c.SessionsBucket = deployed("SESSIONS_BUCKET", " for the stream function", c.Function.RunsTurns(), DefaultLocalBucket, bucketPattern)
	c.DynamoDBEndpoint = r.endpoint("DYNAMODB_ENDPOINT", c.Stage == Prod)
	c.S3Endpoint = r.endpoint("S3_ENDPOINT", c.Stage == Prod)
	c.LocalAWSKey = NewSecret(r.get("LOCAL_AWS_KEY"))
	if !local && !c.LocalAWSKey.IsZero() {
		r.problemf("LOCAL_AWS_KEY: local only (dev and prod use the function's role)")
	}
	c.StreamFunction = deployed("STREAM_FUNCTION_NAME", " for the chat function", c.Function == Chat, "", nil)
	c.SSMPrefix = deployed("SSM_PREFIX", "", true, "", ssmPrefixPattern)
	c.OriginSecretVersion = r.str("ORIGIN_SECRET_VERSION", "", versionPattern)

	c.SignIn = SignIn{
		BundleIDs:        r.list("APPLE_BUNDLE_ID", ",", []string{"com.ovrlrd.app"}, nil),
		ServicesIDs:      r.list("APPLE_SERVICES_ID", ",", nil, nil),
		JWKSURL:          r.url("APPLE_JWKS_URL", "https://appleid.apple.com/auth/keys", prod),
		ApprovedEmails:   r.list("APPROVED_EMAILS", ",", nil, r.email),
		ApprovedAppleIDs: r.list("APPROVED_APPLE_IDS", ",", nil, nil),
		AllowOpenSignup:  r.boolean("ALLOW_OPEN_SIGNUP", false),
	}
	if len(c.SignIn.BundleIDs) == 0 {
		r.problemf("APPLE_BUNDLE_ID: no bundle id in the list")
	}
	for _, id := range c.SignIn.BundleIDs {
		if !bundlePattern.MatchString(id) {
			r.problemf("APPLE_BUNDLE_ID: %q does not match %s", id, bundlePattern)
		}
	}
	for _, id := range c.SignIn.ServicesIDs {
		if !bundlePattern.MatchString(id) {
			r.problemf("APPLE_SERVICES_ID: %q does not match %s", id, bundlePattern)
		}
	}

	c.Sessions = Sessions{
		TTL:            r.duration("SESSION_TTL", 24*time.Hour, 30*24*time.Hour),
		RefreshGrace:   r.duration("REFRESH_GRACE", MaxRefreshGrace, MaxRefreshGrace),
		CheckInterval:  r.duration("SESSION_CHECK_INTERVAL", 30*time.Second, 60*time.Second),
		AuditRetention: r.duration("AUDIT_RETENTION", 365*24*time.Hour, 10*365*24*time.Hour),
	}
	c.Limits = Limits{
		Auth:  r.limit("RATE_LIMIT_AUTH", Limit{30, 15 * time.Minute}),
		Read:  r.limit("RATE_LIMIT_READ", Limit{240, time.Minute}),
		Write: r.limit("RATE_LIMIT_WRITE", Limit{60, time.Minute}),
		Turn:  r.limit("RATE_LIMIT_TURN", Limit{10, time.Minute}),
	}

	defaultEnv := "sandbox"
	if prod {
		defaultEnv = "production"
	}
	c.APNs = APNs{
		KeyID:       r.str("APNS_KEY_ID", "", appleIDPattern),
		TeamID:      r.str("APPLE_TEAM_ID", "", appleIDPattern),
		Host:        r.url("APNS_HOST", "", prod),
		Environment: r.str("APNS_ENVIRONMENT", defaultEnv, apnsEnvPattern),
	}

	c.Claude = r.claude(prod)
	c.Projects = Projects{
		KMSKeyID:      deployed("KMS_KEY_ID", " for the stream function", c.Function.RunsTurns(), "", nil),
		KMSEndpoint:   r.endpoint("KMS_ENDPOINT", c.Stage == Prod),
		MaxBytes:      int64(number(r, "PROJECT_MAX_MB", "an integer", 500, 1, 10240)) << 20,
		AllowLoopback: local,
	}
	if f := r.get("SSL_CERT_FILE"); local && f != "" {
		pem, err := os.ReadFile(f)
		if err != nil {
			r.problemf("SSL_CERT_FILE: %v", err)
		}
		c.Projects.CABundle = pem
	}
}

func (r *reader) claude(prod bool) Claude {
	c := Claude{
		Path:              r.str("CLAUDE_PATH", "claude", nil),
		WorkRoot:          r.absPath("CLAUDE_WORK_ROOT", r.str("CLAUDE_WORK_ROOT", "/tmp/ovrlrd/work", nil)),
		ConfigRoot:        r.absPath("CLAUDE_CONFIG_ROOT", r.str("CLAUDE_CONFIG_ROOT", "/tmp/ovrlrd/claude", nil)),
		AllowedTools:      r.list("CLAUDE_ALLOWED_TOOLS", ",", DefaultAllowedTools, nil),
		MaxRetries:        number(r, "CLAUDE_MAX_RETRIES", "an integer", 3, 0, 10),
		DailyBudgetUSD:    number[float64](r, "DAILY_BUDGET_USD", "a number", 0, 0, 100000),
		WorkspaceMaxBytes: int64(number(r, "WORKSPACE_MAX_MB", "an integer", 110, 1, 1024)) << 20,
		ImportMaxMessages: number(r, "IMPORT_MAX_MESSAGES", "an integer", 5000, 1, 100_000),
		Provider:          ovrlrd.Provider(strings.ToLower(r.str("CLAUDE_PROVIDER", string(ovrlrd.Anthropic), providerPattern))),
		BaseURL:           r.url("ANTHROPIC_BASE_URL", "", prod),
		Model:             r.str("ANTHROPIC_MODEL", "", modelPattern),
	}
	if strings.Contains(c.Path, "/") {
		c.Path = r.absPath("CLAUDE_PATH", c.Path)
	}
	// "first-last": user ids above the system's (1000) and below 2^31,
	// first <= last.
	c.SandboxUIDs = parsed(r, "SANDBOX_UIDS", DefaultSandboxUIDs, func(v string) ([2]uint32, error) {
		a, b, ok := strings.Cut(v, "-")
		first, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 31)
		last, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 31)
		if !ok || err1 != nil || err2 != nil || first < 1000 || last < first {
			return DefaultSandboxUIDs, fmt.Errorf("%q is not a range of user ids first-last (1000 <= first <= last < 2^31)", v)
		}
		return [2]uint32{uint32(first), uint32(last)}, nil
	})
	c.AdditionalDirs = r.list("CLAUDE_ADDITIONAL_DIRS", ":", nil, r.absPath)
	if len(c.AllowedTools) == 0 {
		r.problemf("CLAUDE_ALLOWED_TOOLS: no tool in the list")
	}

	before := len(r.problems)
	c.Timeout = r.duration("CLAUDE_TIMEOUT", 840*time.Second, maxTimeout)
	c.IdleTimeout = r.duration("CLAUDE_IDLE_TIMEOUT", 120*time.Second, maxTimeout)
	if len(r.problems) == before && c.IdleTimeout > c.Timeout {
		r.problemf("CLAUDE_IDLE_TIMEOUT: %v exceeds CLAUDE_TIMEOUT %v", c.IdleTimeout, c.Timeout)
	}
	// A request also always expires early enough for its turn to end well
	// (the turn caps it), so only a wait too short to answer is refused.
	c.ApprovalTimeout = r.duration("APPROVAL_TIMEOUT", 5*time.Minute, maxTimeout)
	if c.ApprovalTimeout < 10*time.Second {
		r.problemf("APPROVAL_TIMEOUT: %v is too short for a person to answer; use at least 10s", c.ApprovalTimeout)
	}
	return c
}

var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "warning": slog.LevelWarn, "error": slog.LevelError,
}

func (r *reader) logLevel() slog.Level {
	return parsed(r, "LOG_LEVEL", slog.LevelInfo, func(v string) (slog.Level, error) {
		l, ok := logLevels[strings.ToLower(v)]
		if !ok {
			return l, fmt.Errorf("unknown level %q (want debug, info, warn or error)", v)
		}
		return l, nil
	})
}

func (r *reader) listenAddr() string {
	return parsed(r, "LISTEN_ADDR", defaultListenAddr, func(v string) (string, error) {
		_, port, err := net.SplitHostPort(v)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
			return "", fmt.Errorf("%q is not host:port", v)
		}
		return v, nil
	})
}

// origins parses CORS_ORIGINS. A wildcard is refused: the API carries
// credentials and must name the origins it trusts.
func (r *reader) origins(httpsOnly bool) []string {
	return r.list("CORS_ORIGINS", ",", nil, func(name, o string) string {
		u, err := url.Parse(o)
		switch {
		case o == "*":
			r.problemf("%s: * is refused; list the origins", name)
		case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") ||
			u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "":
			r.problemf("%s: %q is not an origin (scheme://host[:port], no path)", name, o)
		case httpsOnly && u.Scheme != "https":
			r.problemf("%s: %q must use https in prod", name, o)
		default:
			return strings.ToLower(o)
		}
		return ""
	})
}

// email returns e lowercased, or "" if it is not an email address.
func (r *reader) email(name, e string) string {
	e = strings.ToLower(e)
	local, domain, ok := strings.Cut(e, "@")
	if !ok || local == "" || domain == "" || strings.Contains(domain, "@") {
		r.problemf("%s: %q is not an email address", name, e)
		return ""
	}
	return e
}

// endpoint reads a local stand-in's URL. Prod refuses one: data sent there
// would silently leave AWS.
func (r *reader) endpoint(name string, prod bool) string {
	if prod && r.get(name) != "" {
		r.problemf("%s: refused in prod (local stand-ins only)", name)
		return ""
	}
	return r.url(name, "", false)
}
