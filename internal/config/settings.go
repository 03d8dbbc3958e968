package config

import (
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Defaults of the non-secret settings.
const (
	DefaultBundleID   = "com.ovrlrd.app"
	DefaultJWKSURL    = "https://appleid.apple.com/auth/keys"
	DefaultListenAddr = "127.0.0.1:3000"
	DefaultRegion     = "us-east-1" // local only: dev and prod must say
	// Local-only names, so the local server runs with nothing but JWT_SECRET.
	DefaultLocalTable  = "ovrlrd"
	DefaultLocalBucket = "ovrlrd-sessions"
)

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
	modelPattern   = regexp.MustCompile(`^[a-z0-9.:-]*claude[a-z0-9.:-]*$`)
	versionPattern = regexp.MustCompile(`^[0-9]+$`)
)

func (c *Config) readSettings(r *reader) {
	local := c.Stage == Local
	strict := !local // an unknown stage gets the strictest checks
	prod := c.Stage != Local && c.Stage != Dev
	localDefault := func(v string) string {
		if local {
			return v
		}
		return ""
	}

	c.Region = r.required("AWS_REGION", strict, "in dev and prod", localDefault(DefaultRegion))
	r.match("AWS_REGION", c.Region, regionPattern)
	c.LogLevel = r.logLevel()
	c.ListenAddr = r.listenAddr()
	c.CORSOrigins = r.origins(prod)

	c.TableName = r.required("TABLE_NAME", strict, "in dev and prod", localDefault(DefaultLocalTable))
	r.match("TABLE_NAME", c.TableName, tablePattern)
	c.SessionsBucket = r.required("SESSIONS_BUCKET", strict && c.Function.streams(),
		"in dev and prod for the stream function", localDefault(DefaultLocalBucket))
	r.match("SESSIONS_BUCKET", c.SessionsBucket, bucketPattern)
	c.DynamoDBEndpoint = r.endpoint("DYNAMODB_ENDPOINT", c.Stage == Prod)
	c.S3Endpoint = r.endpoint("S3_ENDPOINT", c.Stage == Prod)
	if key := r.get("LOCAL_AWS_KEY"); key != "" {
		if !local {
			r.problemf("LOCAL_AWS_KEY: local only (dev and prod use the function's role)")
		}
		c.LocalAWSKey = NewSecret(key)
	}
	c.StreamFunction = r.required("STREAM_FUNCTION_NAME", strict && c.Function == Chat,
		"in dev and prod for the chat function", "")
	c.SSMPrefix = r.required("SSM_PREFIX", strict, "in dev and prod", "")
	c.OriginSecretVersion = r.str("ORIGIN_SECRET_VERSION", "")
	r.match("ORIGIN_SECRET_VERSION", c.OriginSecretVersion, versionPattern)
	if c.SSMPrefix != "" && !ssmPrefixPattern.MatchString(c.SSMPrefix) {
		r.problemf("SSM_PREFIX: %q must start with / and not end with one (e.g. /ovrlrd/prod)", c.SSMPrefix)
	}

	c.SignIn = SignIn{
		BundleIDs:        r.list("APPLE_BUNDLE_ID", ",", []string{DefaultBundleID}),
		JWKSURL:          r.url("APPLE_JWKS_URL", DefaultJWKSURL, prod),
		ApprovedEmails:   r.emails(),
		ApprovedAppleIDs: r.list("APPROVED_APPLE_IDS", ",", nil),
		AllowOpenSignup:  r.boolean("ALLOW_OPEN_SIGNUP", false),
	}
	if len(c.SignIn.BundleIDs) == 0 {
		r.problemf("APPLE_BUNDLE_ID: no bundle id in the list")
	}
	for _, id := range c.SignIn.BundleIDs {
		r.match("APPLE_BUNDLE_ID", id, bundlePattern)
	}

	c.Sessions = r.sessions()
	c.Limits = r.limits()

	defaultEnv := "sandbox"
	if prod {
		defaultEnv = "production"
	}
	c.APNs = APNs{
		KeyID:       r.get("APNS_KEY_ID"),
		TeamID:      r.get("APPLE_TEAM_ID"),
		Host:        r.url("APNS_HOST", "", prod),
		Environment: r.str("APNS_ENVIRONMENT", defaultEnv),
	}
	if e := c.APNs.Environment; e != "sandbox" && e != "production" {
		r.problemf("APNS_ENVIRONMENT: unknown environment %q (want sandbox or production)", e)
	}
	r.match("APNS_KEY_ID", c.APNs.KeyID, appleIDPattern)
	r.match("APPLE_TEAM_ID", c.APNs.TeamID, appleIDPattern)

	c.Claude = r.claude(prod)
}

// uidRange reads "first-last": user ids above the system's (1000) and below
// 2^31, first <= last.
func (r *reader) uidRange(name string, def [2]uint32) [2]uint32 {
	v := r.get(name)
	if v == "" {
		return def
	}
	a, b, ok := strings.Cut(v, "-")
	first, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 31)
	last, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 31)
	if !ok || err1 != nil || err2 != nil || first < 1000 || last < first {
		r.problemf("%s: %q is not a range of user ids first-last (1000 <= first <= last < 2^31)", name, v)
		return def
	}
	return [2]uint32{uint32(first), uint32(last)}
}

// match records a problem when v is set and does not match p.
func (r *reader) match(name, v string, p *regexp.Regexp) {
	if v != "" && !p.MatchString(v) {
		r.problemf("%s: %q does not match %s", name, v, p)
	}
}

func (r *reader) claude(prod bool) Claude {
	c := Claude{
		Path:              r.str("CLAUDE_PATH", "claude"),
		WorkRoot:          r.absPath("CLAUDE_WORK_ROOT", r.str("CLAUDE_WORK_ROOT", "/tmp/ovrlrd/work")),
		ConfigRoot:        r.absPath("CLAUDE_CONFIG_ROOT", r.str("CLAUDE_CONFIG_ROOT", "/tmp/ovrlrd/claude")),
		AllowedTools:      r.list("CLAUDE_ALLOWED_TOOLS", ",", DefaultAllowedTools),
		MaxRetries:        r.integer("CLAUDE_MAX_RETRIES", 3, 0, 10),
		DailyBudgetUSD:    r.number("DAILY_BUDGET_USD", 0, 0, 100000),
		WorkspaceMaxBytes: int64(r.integer("WORKSPACE_MAX_MB", 50, 1, 1024)) << 20,
		Provider:          Provider(strings.ToLower(r.str("CLAUDE_PROVIDER", string(Anthropic)))),
		BaseURL:           r.url("ANTHROPIC_BASE_URL", "", prod),
		Model:             r.str("ANTHROPIC_MODEL", ""),
	}
	r.match("ANTHROPIC_MODEL", c.Model, modelPattern)
	if strings.Contains(c.Path, "/") {
		c.Path = r.absPath("CLAUDE_PATH", c.Path)
	}
	c.SandboxUIDs = r.uidRange("SANDBOX_UIDS", DefaultSandboxUIDs)
	for _, d := range r.list("CLAUDE_ADDITIONAL_DIRS", ":", nil) {
		if d = r.absPath("CLAUDE_ADDITIONAL_DIRS", d); d != "" {
			c.AdditionalDirs = append(c.AdditionalDirs, d)
		}
	}
	if len(c.AllowedTools) == 0 {
		r.problemf("CLAUDE_ALLOWED_TOOLS: no tool in the list")
	}
	switch c.Provider {
	case Anthropic, OAuth, Bedrock:
	default:
		r.problemf("CLAUDE_PROVIDER: unknown provider %q (want anthropic, oauth or bedrock)", c.Provider)
	}

	before := len(r.problems)
	c.Timeout = r.duration("CLAUDE_TIMEOUT", 840*time.Second, maxTimeout)
	c.IdleTimeout = r.duration("CLAUDE_IDLE_TIMEOUT", 120*time.Second, maxTimeout)
	if len(r.problems) == before && c.IdleTimeout > c.Timeout {
		r.problemf("CLAUDE_IDLE_TIMEOUT: %v exceeds CLAUDE_TIMEOUT %v", c.IdleTimeout, c.Timeout)
	}
	return c
}

func (r *reader) logLevel() slog.Level {
	switch v := strings.ToLower(r.get("LOG_LEVEL")); v {
	case "debug":
		return slog.LevelDebug
	case "", "info":
		return slog.LevelInfo
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		r.problemf("LOG_LEVEL: unknown level %q (want debug, info, warn or error)", v)
		return slog.LevelInfo
	}
}

func (r *reader) listenAddr() string {
	v := r.str("LISTEN_ADDR", DefaultListenAddr)
	_, port, err := net.SplitHostPort(v)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
		r.problemf("LISTEN_ADDR: %q is not host:port", v)
		return DefaultListenAddr
	}
	return v
}

// origins parses CORS_ORIGINS. A wildcard is refused: the API carries
// credentials and must name the origins it trusts.
func (r *reader) origins(httpsOnly bool) []string {
	var out []string
	for _, o := range r.list("CORS_ORIGINS", ",", nil) {
		u, err := url.Parse(o)
		switch {
		case o == "*":
			r.problemf("CORS_ORIGINS: * is refused; list the origins")
		case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") ||
			u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "":
			r.problemf("CORS_ORIGINS: %q is not an origin (scheme://host[:port], no path)", o)
		case httpsOnly && u.Scheme != "https":
			r.problemf("CORS_ORIGINS: %q must use https in prod", o)
		default:
			out = append(out, strings.ToLower(o))
		}
	}
	return out
}

func (r *reader) emails() []string {
	var out []string
	for _, e := range r.list("APPROVED_EMAILS", ",", nil) {
		e = strings.ToLower(e)
		local, domain, ok := strings.Cut(e, "@")
		if !ok || local == "" || domain == "" || strings.Contains(domain, "@") {
			r.problemf("APPROVED_EMAILS: %q is not an email address", e)
			continue
		}
		out = append(out, e)
	}
	return out
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
