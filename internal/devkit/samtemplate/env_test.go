package samtemplate_test

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/devkit/samtemplate"
)

// Settings the configuration reads that a deployment does not set, and why.
// A new setting fails TestEveryDeployedSettingIsSet until it is either set
// in template.yaml (or the image) or listed here.
var notDeployed = map[string]string{
	"AWS_REGION":               "set by Lambda (reserved)",
	"AWS_LAMBDA_FUNCTION_NAME": "set by Lambda; read to refuse STAGE=local there",
	"AWS_LAMBDA_RUNTIME_API":   "set by Lambda; read to refuse STAGE=local there",
	"AWS_SAM_LOCAL":            "set by sam local only; read to allow STAGE=local in its containers",
	"DYNAMODB_ENDPOINT":        "local stand-in only",
	"S3_ENDPOINT":              "local stand-in only",
	"KMS_ENDPOINT":             "local stand-in only",
	"LOCAL_AWS_KEY":            "local stand-ins only",
	"LISTEN_ADDR":              "the local server only",
	"SSL_CERT_FILE":            "the local stage only: extra trusted roots for the local git server",
	"JWT_SECRET":               "secret: SSM jwt-keys in dev and prod",
	"API_KEY":                  "secret: SSM api-key in dev and prod",
	"ANTHROPIC_API_KEY":        "secret: SSM anthropic-api-key in dev and prod",
	"CLAUDE_CODE_OAUTH_TOKEN":  "secret: SSM claude-oauth-token in dev and prod",
	"APNS_KEY":                 "secret: SSM apns-key in dev and prod",
	"ORIGIN_SECRET":            "secret: SSM origin-secret in dev and prod",
	"ORIGIN_SECRET_PREVIOUS":   "secret: SSM origin-secret-previous in dev and prod",
	"APPLE_JWKS_URL":           "override for a stand-in; Apple's default is right in AWS",
	"APNS_HOST":                "override for a stand-in; Apple's default is right in AWS",
	"ANTHROPIC_BASE_URL":       "override for a stand-in; Anthropic's default is right in AWS",
	"APNS_ENVIRONMENT":         "tunable; the stage's default (production in prod, sandbox in dev)",
	"SESSION_TTL":              "tunable; the code's default is the deployed value",
	"REFRESH_GRACE":            "tunable; the code's default is the deployed value",
	"SESSION_CHECK_INTERVAL":   "tunable; the code's default is the deployed value",
	"AUDIT_RETENTION":          "tunable; the code's default is the deployed value",
	"EVENT_LOG_TTL":            "tunable; the code's default is the deployed value",
	"RATE_LIMIT_AUTH":          "tunable; the code's default is the deployed value",
	"RATE_LIMIT_READ":          "tunable; the code's default is the deployed value",
	"RATE_LIMIT_WRITE":         "tunable; the code's default is the deployed value",
	"RATE_LIMIT_TURN":          "tunable; the code's default is the deployed value",
	"CLAUDE_ALLOWED_TOOLS":     "tunable; the code's default is the deployed value",
	"SANDBOX_UIDS":             "a root server's turn users; Lambda never runs a function as root",
	"CLAUDE_MAX_RETRIES":       "tunable; the code's default is the deployed value",
	"CLAUDE_ADDITIONAL_DIRS":   "tunable; none in AWS",
	"CLAUDE_IDLE_TIMEOUT":      "tunable; the code's default is the deployed value",
	"APPROVAL_TIMEOUT":         "tunable; the code's default is the deployed value",
	"WORKSPACE_MAX_MB":         "tunable; the code's default is the deployed value",
	"PROJECT_MAX_MB":           "tunable; the code's default is the deployed value",
	"IMPORT_MAX_MESSAGES":      "tunable; the code's default is the deployed value",
}

// Set by the stream function's image (Dockerfile ENV), not the template.
var imageSettings = []string{"CLAUDE_PATH", "CLAUDE_WORK_ROOT", "CLAUDE_CONFIG_ROOT"}

// Settings of some functions only, set for those and no other: the chat
// function alone starts turns elsewhere.
var functionOnly = map[string][]string{
	"STREAM_FUNCTION_NAME":  {"ChatFunction"},
	"ANTHROPIC_MODEL":       {"StreamFunction"}, // only it runs the CLI
	"ORIGIN_SECRET_VERSION": {"StreamFunction"}, // only it checks the secret
	// Projects' tokens: the stream function serves the projects' routes
	// and turns, which seal and open them; the chat function links no KMS.
	"KMS_KEY_ID": {"StreamFunction"},
}

// configReads is every environment variable the configuration reads: the
// names Load asks its getenv for in every stage, function and provider,
// and, so that no rarely taken branch is missed, every string constant in
// internal/config shaped like an environment variable and passed to a call.
func configReads(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, stage := range []string{"local", "dev", "prod"} {
		for _, fn := range []config.Function{config.Auth, config.Chat, config.Stream, config.All} {
			for _, provider := range []string{"anthropic", "oauth", "bedrock"} {
				env := map[string]string{
					"STAGE": stage, "CLAUDE_PROVIDER": provider, "APNS_KEY_ID": "ABCDE12345", "APPLE_TEAM_ID": "TEAM123456",
					"CLAUDE_PATH": "/opt/claude/bin/claude", "CLAUDE_ADDITIONAL_DIRS": "/tmp/a",
				}
				getenv := func(k string) string { names[k] = true; return env[k] }
				_, _ = config.LoadWith(context.Background(), fn, getenv, config.EnvSecrets(getenv))
			}
		}
	}
	envName := regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$|^STAGE$`)
	inspectSources(t, "../config/*.go", func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		for _, a := range call.Args {
			if lit, ok := a.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && envName.MatchString(s) {
					names[s] = true
				}
			}
		}
		return true
	})
	return names
}

// inspectSources walks the syntax of every non-test Go file glob matches.
func inspectSources(t *testing.T, glob string, visit func(ast.Node) bool) {
	t.Helper()
	files, _ := filepath.Glob(glob)
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, visit)
	}
}

// dockerEnv reads the ENV instructions of the Dockerfile's final stage.
func dockerEnv(t *testing.T) map[string]string {
	t.Helper()
	env, err := samtemplate.DockerfileEnv("../../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// Every setting the configuration reads that a deployment needs is set for
// every function (by the template, or the image for the stream function);
// the template sets nothing the configuration does not read, and no secret.
func TestEveryDeployedSettingIsSet(t *testing.T) {
	tpl := load(t)
	reads := configReads(t)
	image := dockerEnv(t)
	for _, fn := range functions {
		env := functionEnv(t, tpl, fn)
		for name := range reads {
			if _, skip := notDeployed[name]; skip {
				continue
			}
			if only, ok := functionOnly[name]; ok && !slices.Contains(only, fn) {
				continue
			}
			if slices.Contains(imageSettings, name) && fn != "StreamFunction" {
				continue // only the stream function runs the CLI
			}
			_, inTemplate := env[name]
			inImage := fn == "StreamFunction" && image[name] != ""
			if !inTemplate && !inImage {
				t.Errorf("%s: %s is read by the configuration but not set; set it in template.yaml, or add it to notDeployed saying why", fn, name)
			}
		}
		for name, v := range env {
			if !reads[name] {
				t.Errorf("%s: template sets %s, which the configuration never reads", fn, name)
			}
			if only, ok := functionOnly[name]; ok && !slices.Contains(only, fn) {
				t.Errorf("%s: template sets %s, which only %v read", fn, name, only)
			}
			switch why := notDeployed[name]; {
			case strings.Contains(why, "by Lambda") || strings.Contains(why, "by sam local"):
				t.Errorf("%s: template sets %s (%s)", fn, name, why)
			case (strings.HasPrefix(why, "secret") || strings.Contains(why, "local stand-in")) && v != "":
				// Declared empty, sam local passes events/env.json's value
				// and AWS gets nothing: any other value would be deployed.
				t.Errorf("%s: template sets %s (%s); declare it empty, for sam local, or not at all", fn, name, why)
			}
		}
	}
	for _, name := range imageSettings {
		if !reads[name] {
			t.Errorf("the image sets %s, which the configuration never reads", name)
		}
		if name != "CLAUDE_PATH" && !strings.HasPrefix(image[name], "/tmp/") {
			t.Errorf("image %s=%q: Lambda's only writable folder is /tmp", name, image[name])
		}
	}
	for name := range notDeployed {
		if !reads[name] {
			t.Errorf("notDeployed lists %s, which the configuration no longer reads", name)
		}
	}
	var all []string
	for n := range reads {
		all = append(all, n)
	}
	sort.Strings(all)
	t.Logf("the configuration reads %d names: %v", len(all), all)
}
