package config_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

func TestLocalWithJWTSecretOnly(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, config.All, localEnv(), nil)

	if c.Stage != config.Local || c.Function != config.All {
		t.Errorf("stage %q function %q", c.Stage, c.Function)
	}
	if !c.APIKey.IsZero() {
		t.Error("API key set without API_KEY")
	}
	if !c.Claude.Credential.IsZero() || c.PushEnabled() || len(c.OriginSecrets) > 0 {
		t.Error("optional secrets configured from nothing")
	}
	if k := c.JWTKeys.Signing(); k.ID != "k1" || k.Secret.Reveal() != key1 {
		t.Errorf("signing key %q", k.ID)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Region", c.Region, "us-east-1"},
		{"TableName", c.TableName, config.DefaultLocalTable},
		{"SessionsBucket", c.SessionsBucket, config.DefaultLocalBucket},
		{"ListenAddr", c.ListenAddr, "127.0.0.1:3000"},
		{"LogLevel", c.LogLevel, slog.LevelInfo},
		{"BundleIDs", strings.Join(c.SignIn.BundleIDs, ","), "com.ovrlrd.app"},
		{"ServicesIDs", len(c.SignIn.ServicesIDs), 0},
		{"JWKSURL", c.SignIn.JWKSURL, "https://appleid.apple.com/auth/keys"},
		{"AllowOpenSignup", c.SignIn.AllowOpenSignup, false},
		{"Path", c.Claude.Path, "claude"},
		{"WorkRoot", c.Claude.WorkRoot, "/tmp/ovrlrd/work"},
		{"ConfigRoot", c.Claude.ConfigRoot, "/tmp/ovrlrd/claude"},
		{"AllowedTools", strings.Join(c.Claude.AllowedTools, ","), strings.Join(config.DefaultAllowedTools, ",")},
		{"Timeout", c.Claude.Timeout, 840 * time.Second},
		{"IdleTimeout", c.Claude.IdleTimeout, 120 * time.Second},
		{"MaxRetries", c.Claude.MaxRetries, 3},
		{"Provider", c.Claude.Provider, ovrlrd.Anthropic},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestLocalTakesSecretsFromEnv(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, config.Stream, localEnv(
		"API_KEY", apiKey, "CLAUDE_PROVIDER", "oauth", "CLAUDE_CODE_OAUTH_TOKEN", oauthTok,
		"APNS_KEY_ID", "ABCDE12345", "APPLE_TEAM_ID", "TEAM123456",
		"APNS_KEY", strings.ReplaceAll(apnsPEM, "\n", `\n`), // as a .env file holds it
		"ORIGIN_SECRET", originSec,
	), nil)
	if c.APIKey.Reveal() != apiKey || c.Claude.Credential.Reveal() != oauthTok || !c.PushEnabled() ||
		len(c.OriginSecrets) != 1 || c.OriginSecrets[0].Reveal() != originSec || c.APNs.Key.Reveal() != apnsPEM {
		t.Errorf("secrets not loaded from the environment: %+v", c)
	}
}

func TestLocalRefusedInsideLambda(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_RUNTIME_API"} {
		_, err := load(t, config.Chat, localEnv(name, "x"), nil)
		wantAll(t, problems(t, err), "local is refused inside Lambda", name)
	}
}

func TestProdLoadsEverything(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, config.Stream, prodEnv("APNS_KEY_ID", "ABCDE12345", "APPLE_TEAM_ID", "TEAM123456"), prodParams())
	ring := c.JWTKeys
	if len(ring) != 2 || ring.Signing().ID != "k2" {
		t.Fatalf("key ring kids %v", ring)
	}
	if k, ok := ring.Lookup("k1"); !ok || k.Secret.Reveal() != key1 {
		t.Error("k1 does not verify")
	}
	if c.APIKey.Reveal() != apiKey || c.APIKey.IsZero() || c.Claude.Credential.Reveal() != claudeKey ||
		len(c.OriginSecrets) != 1 || c.OriginSecrets[0].Reveal() != originSec || !c.PushEnabled() {
		t.Error("a secret is missing")
	}
}

func TestEachMissingRequiredSecretIsNamed(t *testing.T) {
	t.Parallel()
	cases := []struct {
		fn       config.Function
		provider string
		want     []string
		notWant  []string
	}{
		{config.Auth, "", []string{"jwt-keys", "api-key"}, []string{"anthropic-api-key", "apns-key", "origin-secret"}},
		{config.Chat, "", []string{"jwt-keys", "api-key"}, []string{"anthropic-api-key", "apns-key", "origin-secret"}},
		{config.Stream, "anthropic", []string{"jwt-keys", "api-key", "anthropic-api-key"}, []string{"claude-oauth-token", "apns-key", "origin-secret"}},
		{config.Stream, "oauth", []string{"jwt-keys", "api-key", "claude-oauth-token"}, []string{"anthropic-api-key"}},
		{config.All, "bedrock", []string{"jwt-keys", "api-key"}, []string{"anthropic-api-key", "claude-oauth-token"}},
	}
	for _, tc := range cases {
		_, err := load(t, tc.fn, prodEnv("CLAUDE_PROVIDER", tc.provider), nil)
		text := problems(t, err)
		for _, name := range tc.want {
			wantAll(t, text, "secret "+name+": missing (SSM parameter "+prefix+"/"+name+")")
		}
		wantNone(t, text, tc.notWant...)
	}

	// Each one alone, too.
	for _, name := range []string{"jwt-keys", "api-key", "anthropic-api-key"} {
		_, err := load(t, config.Stream, prodEnv(), prodParams(prefix+"/"+name, ""))
		text := problems(t, err)
		wantAll(t, text, "1 problem:", prefix+"/"+name)
	}
}

func TestOptionalSecretsMayBeAbsent(t *testing.T) {
	t.Parallel()
	params := prodParams(prefix+"/apns-key", "", prefix+"/origin-secret", "")
	c := mustLoad(t, config.Stream, prodEnv(), params)
	if c.PushEnabled() || len(c.OriginSecrets) > 0 {
		t.Error("absent optional secrets reported as configured")
	}
}

func TestBedrockNeedsNoCredential(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, config.Stream, prodEnv("CLAUDE_PROVIDER", "bedrock"), prodParams(prefix+"/anthropic-api-key", ""))
	if c.Claude.Provider != ovrlrd.Bedrock || !c.Claude.Credential.IsZero() {
		t.Error("bedrock credential")
	}
}

func TestAPIKeyOptionalOnlyInLocal(t *testing.T) {
	t.Parallel()
	for _, stage := range []string{"dev", "prod"} {
		_, err := load(t, config.Chat, prodEnv("STAGE", stage), prodParams(prefix+"/api-key", ""))
		wantAll(t, problems(t, err), "secret api-key: missing")
	}
}

func TestLocalStillNeedsJWTSecret(t *testing.T) {
	t.Parallel()
	_, err := load(t, config.All, localEnv("JWT_SECRET", ""), nil)
	wantAll(t, problems(t, err), "secret jwt-keys: missing (set JWT_SECRET)")
}

func TestManyProblemsInOneError(t *testing.T) {
	t.Parallel()
	env := map[string]string{"STAGE": "staging", "CLAUDE_TIMEOUT": "90", "CLAUDE_MAX_RETRIES": "-1"}
	_, err := config.LoadWith(context.Background(), config.Stream, getenv(env), config.EnvSecrets(getenv(env)))
	text := problems(t, err)
	wantAll(t, text,
		`STAGE: unknown stage "staging"`,
		`CLAUDE_TIMEOUT: "90" has no unit`,
		"CLAUDE_MAX_RETRIES: -1 is out of range",
		"AWS_REGION: required",
		"TABLE_NAME: required",
		"SSM_PREFIX: required",
		"secret jwt-keys: missing",
		"secret api-key: missing",
		"secret anthropic-api-key: missing",
	)
	if strings.Count(text, "config:") != 1 {
		t.Errorf("not one error: %s", text)
	}
}

// A deployed stage whose SSM settings are invalid reads no secret, and says
// so beside the settings' own problems.
func TestLoadWithoutAValidSSMSource(t *testing.T) {
	t.Parallel()
	_, err := config.Load(context.Background(), config.Auth, getenv(prodEnv("SSM_PREFIX", "ovrlrd/prod")))
	wantAll(t, problems(t, err), "SSM_PREFIX: ", "could not load jwt-keys, api-key: SSM needs a valid SSM_PREFIX and AWS_REGION")
}

func TestMalformedValues(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no stage", localEnv("STAGE", ""), "STAGE: required"},
		{"unknown stage", localEnv("STAGE", "qa"), `unknown stage "qa"`},
		{"bad duration", localEnv("CLAUDE_TIMEOUT", "soon"), `CLAUDE_TIMEOUT: "soon" is not a duration`},
		{"bare integer duration", localEnv("CLAUDE_IDLE_TIMEOUT", "120"), `CLAUDE_IDLE_TIMEOUT: "120" has no unit; add one, e.g. 120s`},
		{"zero duration", localEnv("CLAUDE_IDLE_TIMEOUT", "0s"), "CLAUDE_IDLE_TIMEOUT: 0s is out of range"},
		{"duration too long", localEnv("CLAUDE_TIMEOUT", "16m"), "CLAUDE_TIMEOUT: 16m0s is out of range"},
		{"idle above total", localEnv("CLAUDE_TIMEOUT", "1m", "CLAUDE_IDLE_TIMEOUT", "2m"), "exceeds CLAUDE_TIMEOUT"},
		{"negative number", localEnv("CLAUDE_MAX_RETRIES", "-1"), "CLAUDE_MAX_RETRIES: -1 is out of range"},
		{"not a number", localEnv("CLAUDE_MAX_RETRIES", "three"), `CLAUDE_MAX_RETRIES: "three" is not an integer`},
		{"bad bool", localEnv("ALLOW_OPEN_SIGNUP", "maybe"), "ALLOW_OPEN_SIGNUP"},
		{"bad log level", localEnv("LOG_LEVEL", "loud"), `LOG_LEVEL: unknown level "loud"`},
		{"bad provider", localEnv("CLAUDE_PROVIDER", "openai"), `CLAUDE_PROVIDER: "openai" does not match`},
		{"relative additional dir", localEnv("CLAUDE_ADDITIONAL_DIRS", "/srv/a:srv/b"), `CLAUDE_ADDITIONAL_DIRS: "srv/b" is not an absolute path`},
		{"relative work root", localEnv("CLAUDE_WORK_ROOT", "work"), "CLAUDE_WORK_ROOT"},
		{"relative claude path", localEnv("CLAUDE_PATH", "bin/claude"), "CLAUDE_PATH"},
		{"wildcard origin", localEnv("CORS_ORIGINS", "*"), "CORS_ORIGINS: * is refused"},
		{"origin with path", localEnv("CORS_ORIGINS", "https://a.example/x"), "is not an origin"},
		{"bad listen addr", localEnv("LISTEN_ADDR", "3000"), "LISTEN_ADDR"},
		{"bad email", localEnv("APPROVED_EMAILS", "a@b.c,nobody"), `"nobody" is not an email address`},
		{"bad jwks url", localEnv("APPLE_JWKS_URL", "appleid/keys"), "APPLE_JWKS_URL: not an absolute http(s) URL"},
		{"bad services id", localEnv("APPLE_SERVICES_ID", "com.ovrlrd.web, web client"), `APPLE_SERVICES_ID: "web client" does not match`},
		{"short key", localEnv("JWT_SECRET", "k1:short"), "secret is 5 bytes, need at least 32"},
		{"bad kid", localEnv("JWT_SECRET", "bad kid:"+key1), "kid must match"},
		{"no kid", localEnv("JWT_SECRET", key1), "entry 1 is not kid:secret"},
		{"duplicate kid", localEnv("JWT_SECRET", "k1:"+key1+",k1:"+key2), `entry 2: duplicate kid "k1"`},
		{"apns key id without team", localEnv("APNS_KEY_ID", "ABCDE12345", "APNS_KEY", apnsPEM), "APPLE_TEAM_ID: required when APNS_KEY_ID is set"},
		{"apns ids without key", localEnv("APNS_KEY_ID", "ABCDE12345", "APPLE_TEAM_ID", "TEAM123456"), "secret apns-key: missing (set APNS_KEY), needed for push"},
		{"apns key not pem", localEnv("APNS_KEY", "not-a-key"), "secret apns-key (set APNS_KEY): not PEM text"},
		{"bad apns key id", localEnv("APNS_KEY_ID", "short"), "APNS_KEY_ID"},
		{"dynamodb endpoint in prod", prodEnv("DYNAMODB_ENDPOINT", "http://127.0.0.1:8000"), "DYNAMODB_ENDPOINT: refused in prod"},
		{"s3 endpoint in prod", prodEnv("S3_ENDPOINT", "http://127.0.0.1:9000"), "S3_ENDPOINT: refused in prod"},
		{"no region in prod", prodEnv("AWS_REGION", ""), "AWS_REGION: required in dev and prod"},
		{"bad region", prodEnv("AWS_REGION", "mars"), "AWS_REGION"},
		{"no table in prod", prodEnv("TABLE_NAME", ""), "TABLE_NAME: required"},
		{"refresh grace above 4h", localEnv("REFRESH_GRACE", "5h"), "REFRESH_GRACE: 5h0m0s is out of range"},
		{"session check above 60s", localEnv("SESSION_CHECK_INTERVAL", "2m"), "SESSION_CHECK_INTERVAL: 2m0s is out of range"},
		{"bad rate limit", localEnv("RATE_LIMIT_READ", "lots"), `RATE_LIMIT_READ: "lots" is not N/window`},
		{"zero rate limit", localEnv("RATE_LIMIT_TURN", "0/1m"), `RATE_LIMIT_TURN: "0/1m" is out of range`},
		{"rate window too short", localEnv("RATE_LIMIT_AUTH", "5/500ms"), "RATE_LIMIT_AUTH"},
		{"bad budget", localEnv("DAILY_BUDGET_USD", "lots"), `DAILY_BUDGET_USD: "lots" is not a number`},
		{"negative budget", localEnv("DAILY_BUDGET_USD", "-1"), "DAILY_BUDGET_USD: -1 is out of range"},
		{"workspace cap zero", localEnv("WORKSPACE_MAX_MB", "0"), "WORKSPACE_MAX_MB: 0 is out of range"},
		{"unknown apns environment", localEnv("APNS_ENVIRONMENT", "staging"), `APNS_ENVIRONMENT: "staging" does not match`},
		{"no bucket for stream", prodEnv("SESSIONS_BUCKET", ""), "SESSIONS_BUCKET: required"},
		{"relative ssm prefix", prodEnv("SSM_PREFIX", "ovrlrd/prod"), "SSM_PREFIX"},
		{"trailing slash ssm prefix", prodEnv("SSM_PREFIX", "/ovrlrd/prod/"), "SSM_PREFIX"},
		{"secret in prod env", prodEnv("JWT_SECRET", "k1:"+key1), "JWT_SECRET: not read in prod"},
		{"http base url in prod", prodEnv("ANTHROPIC_BASE_URL", "http://127.0.0.1:1"), "ANTHROPIC_BASE_URL: must use https in prod"},
		{"http origin in prod", prodEnv("CORS_ORIGINS", "http://a.example"), "must use https in prod"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := load(t, config.Stream, tc.env, prodParams())
			text := problems(t, err)
			wantAll(t, text, tc.want)
			// Problems quote settings, never secrets.
			wantNone(t, text, key1, key2, apiKey, claudeKey, originSec, "PRIVATE KEY")
		})
	}
}

func TestDevAllowsLocalEndpoints(t *testing.T) {
	t.Parallel()
	env := prodEnv("STAGE", "dev", "DYNAMODB_ENDPOINT", "http://127.0.0.1:8000", "S3_ENDPOINT", "http://127.0.0.1:9000",
		"ANTHROPIC_BASE_URL", "http://127.0.0.1:4000")
	c := mustLoad(t, config.Stream, env, prodParams())
	if c.DynamoDBEndpoint != "http://127.0.0.1:8000" || c.S3Endpoint != "http://127.0.0.1:9000" || c.Claude.BaseURL == "" {
		t.Errorf("endpoints %q %q %q", c.DynamoDBEndpoint, c.S3Endpoint, c.Claude.BaseURL)
	}
}

func TestListsAndValues(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, config.All, localEnv(
		"APPLE_BUNDLE_ID", "com.ovrlrd.app, com.ovrlrd.app.dev",
		"APPLE_SERVICES_ID", " com.ovrlrd.web,,com.ovrlrd.web.staging ",
		"APPROVED_EMAILS", " Alice@Example.COM ,bob@example.com,",
		"APPROVED_APPLE_IDS", "001234.AbC.0123, 005678.dEf.0456",
		"ALLOW_OPEN_SIGNUP", "true",
		"CLAUDE_ADDITIONAL_DIRS", "/srv/repos:/opt/shared/",
		"CLAUDE_ALLOWED_TOOLS", "Read, Grep,Bash(git log:*)",
		"CLAUDE_TIMEOUT", "10m", "CLAUDE_IDLE_TIMEOUT", "90s", "CLAUDE_MAX_RETRIES", "0",
		"CORS_ORIGINS", "https://App.Example.com,http://localhost:5173",
		"LISTEN_ADDR", ":8080", "LOG_LEVEL", "DEBUG", "AWS_REGION", "eu-central-1",
	), nil)
	eq := func(name string, got, want []string) {
		if !slices.Equal(got, want) {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	eq("BundleIDs", c.SignIn.BundleIDs, []string{"com.ovrlrd.app", "com.ovrlrd.app.dev"})
	eq("ServicesIDs", c.SignIn.ServicesIDs, []string{"com.ovrlrd.web", "com.ovrlrd.web.staging"})
	eq("ApprovedEmails", c.SignIn.ApprovedEmails, []string{"alice@example.com", "bob@example.com"})
	eq("ApprovedAppleIDs", c.SignIn.ApprovedAppleIDs, []string{"001234.AbC.0123", "005678.dEf.0456"})
	eq("AdditionalDirs", c.Claude.AdditionalDirs, []string{"/srv/repos", "/opt/shared"})
	eq("AllowedTools", c.Claude.AllowedTools, []string{"Read", "Grep", "Bash(git log:*)"})
	eq("CORSOrigins", c.CORSOrigins, []string{"https://app.example.com", "http://localhost:5173"})
	if !c.SignIn.AllowOpenSignup || c.Claude.Timeout != 10*time.Minute || c.Claude.IdleTimeout != 90*time.Second ||
		c.Claude.MaxRetries != 0 || c.ListenAddr != ":8080" || c.LogLevel != slog.LevelDebug || c.Region != "eu-central-1" {
		t.Errorf("values: %+v", c)
	}
}

func TestChatNeedsTheStreamFunction(t *testing.T) {
	t.Parallel()
	_, err := load(t, config.Chat, prodEnv("STREAM_FUNCTION_NAME", ""), prodParams())
	wantAll(t, problems(t, err), "STREAM_FUNCTION_NAME: required in dev and prod for the chat function")
}

func TestProjectSettings(t *testing.T) {
	t.Parallel()
	_, err := load(t, config.Stream, prodEnv("KMS_KEY_ID", ""), prodParams())
	wantAll(t, problems(t, err), "KMS_KEY_ID: required in dev and prod for the stream function")
	for _, fn := range []config.Function{config.Auth, config.Chat} {
		c, err := load(t, fn, prodEnv("KMS_KEY_ID", ""), prodParams())
		if err != nil || c.ProjectsEnabled() || c.Projects.MaxBytes != 500<<20 || c.Projects.AllowLoopback {
			t.Fatalf("%s without a key: %+v, %v", fn, c.Projects, err)
		}
	}
	_, err = load(t, config.Stream, prodEnv("KMS_ENDPOINT", "http://127.0.0.1:1"), prodParams())
	wantAll(t, problems(t, err), "KMS_ENDPOINT: refused in prod")

	pem := filepath.Join(t.TempDir(), "roots.pem")
	if err := os.WriteFile(pem, []byte("roots"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := load(t, config.All, localEnv("PROJECT_MAX_MB", "20", "SSL_CERT_FILE", pem), nil)
	if err != nil || c.ProjectsEnabled() || c.Projects.MaxBytes != 20<<20 || !c.Projects.AllowLoopback || string(c.Projects.CABundle) != "roots" {
		t.Fatalf("local: %+v, %v", c.Projects, err)
	}
	c, err = load(t, config.Stream, prodEnv("SSL_CERT_FILE", pem), prodParams())
	if err != nil || c.Projects.CABundle != nil || c.Projects.AllowLoopback || !c.ProjectsEnabled() {
		t.Fatalf("prod: %+v, %v", c.Projects, err)
	}
	_, err = load(t, config.All, localEnv("SSL_CERT_FILE", pem+".missing"), nil)
	wantAll(t, problems(t, err), "SSL_CERT_FILE")

	if c := mustLoad(t, config.All, localEnv(), nil); c.Claude.ImportMaxMessages != 5000 {
		t.Fatalf("import cap %d, want 5000", c.Claude.ImportMaxMessages)
	}
	if c := mustLoad(t, config.All, localEnv("IMPORT_MAX_MESSAGES", "20"), nil); c.Claude.ImportMaxMessages != 20 {
		t.Fatalf("import cap %d, want 20", c.Claude.ImportMaxMessages)
	}
	_, err = load(t, config.All, localEnv("IMPORT_MAX_MESSAGES", "0"), nil)
	wantAll(t, problems(t, err), "IMPORT_MAX_MESSAGES")
}

func TestSessionAndLimitSettings(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, config.All, localEnv(), nil)
	if c.Sessions.TTL != 24*time.Hour || c.Sessions.RefreshGrace != 4*time.Hour || c.Sessions.CheckInterval > time.Minute {
		t.Errorf("session defaults: %+v", c.Sessions)
	}
	if c.Limits.Read.N < 120 || c.Limits.Read.Window != time.Minute || c.Limits.Turn != (config.Limit{N: 10, Window: time.Minute}) {
		t.Errorf("limit defaults: %+v", c.Limits)
	}
	if c.APNs.Environment != "sandbox" {
		t.Errorf("local APNs environment %q", c.APNs.Environment)
	}
	c = mustLoad(t, config.All, localEnv("SESSION_TTL", "1h", "REFRESH_GRACE", "30m", "RATE_LIMIT_AUTH", "5/90s"), nil)
	if c.Sessions.TTL != time.Hour || c.Sessions.RefreshGrace != 30*time.Minute || c.Limits.Auth != (config.Limit{N: 5, Window: 90 * time.Second}) {
		t.Errorf("overrides: %+v %+v", c.Sessions, c.Limits)
	}
}

// A turn's event log is kept a day unless configured, never longer than a
// month, and never shorter than a turn.
func TestEventLogTTL(t *testing.T) {
	t.Parallel()
	if c := mustLoad(t, config.All, localEnv(), nil); c.EventLogTTL != 24*time.Hour {
		t.Fatalf("default %v", c.EventLogTTL)
	}
	if c := mustLoad(t, config.All, localEnv("EVENT_LOG_TTL", "2h"), nil); c.EventLogTTL != 2*time.Hour {
		t.Fatalf("set to 2h: %v", c.EventLogTTL)
	}
	for _, v := range []string{"721h", "0s", "12", "30m"} {
		_, err := load(t, config.All, localEnv("EVENT_LOG_TTL", v), nil)
		wantAll(t, problems(t, err), "EVENT_LOG_TTL")
	}
}

func TestFunctionIsChecked(t *testing.T) {
	t.Parallel()
	_, err := load(t, config.Function("worker"), localEnv(), nil)
	wantAll(t, problems(t, err), `function "worker"`)
}

// Rolling the origin secret: both values are accepted from SSM; a previous
// secret alone is a mistake in the rotation, not a secret to accept.
func TestOriginSecretRing(t *testing.T) {
	t.Parallel()
	const previous = "previous-origin-secret-0123456789"
	c := mustLoad(t, config.Stream, prodEnv("ORIGIN_SECRET_VERSION", "7"), prodParams(prefix+"/origin-secret-previous", previous))
	if len(c.OriginSecrets) != 2 || c.OriginSecrets[0].Reveal() != originSec || c.OriginSecrets[1].Reveal() != previous || c.OriginSecretVersion != "7" {
		t.Fatalf("origin secrets %d, version %q", len(c.OriginSecrets), c.OriginSecretVersion)
	}
	_, err := load(t, config.Stream, prodEnv(), prodParams(prefix+"/origin-secret", "", prefix+"/origin-secret-previous", previous))
	wantAll(t, problems(t, err), "secret origin-secret-previous: set without origin-secret")
	_, err = load(t, config.Stream, prodEnv("ORIGIN_SECRET_VERSION", "latest"), prodParams())
	wantAll(t, problems(t, err), "ORIGIN_SECRET_VERSION")
}

// ANTHROPIC_MODEL takes a full model id; an alias would name itself as the
// model behind it once the CLI is pinned.
func TestModelIsAFullID(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"claude-sonnet-4-5", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"} {
		if c := mustLoad(t, config.Stream, prodEnv("ANTHROPIC_MODEL", id), prodParams()); c.Claude.Model != id {
			t.Errorf("model %q, want %q", c.Claude.Model, id)
		}
	}
	for _, alias := range []string{"sonnet", "opus", "Claude-Sonnet"} {
		_, err := load(t, config.Stream, prodEnv("ANTHROPIC_MODEL", alias), prodParams())
		wantAll(t, problems(t, err), "ANTHROPIC_MODEL")
	}
}

// A live approval waits five minutes unless configured, never less than a
// person needs to answer.
func TestApprovalTimeout(t *testing.T) {
	t.Parallel()
	if c := mustLoad(t, config.All, localEnv(), nil); c.Claude.ApprovalTimeout != 5*time.Minute {
		t.Fatalf("default %v", c.Claude.ApprovalTimeout)
	}
	if c := mustLoad(t, config.All, localEnv("APPROVAL_TIMEOUT", "90s"), nil); c.Claude.ApprovalTimeout != 90*time.Second {
		t.Fatalf("set to 90s: %v", c.Claude.ApprovalTimeout)
	}
	for _, v := range []string{"9s", "0s", "60", "100h"} {
		_, err := load(t, config.All, localEnv("APPROVAL_TIMEOUT", v), nil)
		wantAll(t, problems(t, err), "APPROVAL_TIMEOUT")
	}
}
