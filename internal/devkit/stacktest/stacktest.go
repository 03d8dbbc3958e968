// Package stacktest holds the configuration every test of the whole local
// stack runs on, so those tests and make dev's wiring cannot drift apart
// one copy at a time.
package stacktest

import (
	"crypto/rand"
	"testing"

	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/devkit/sandboxtest"
	"github.com/ovrlrd/cloud/internal/devkit/storetest"
)

// Env is a local stack's settings: this run's DynamoDB Local table, the S3
// and Apple stand-ins at s3URL and appleURL, a JWT key of its own (so its
// address-hash rate-limit buckets are its own), the fake CLI and folders
// for it; overrides are name, value pairs that replace or add settings.
func Env(t testing.TB, s3URL, appleURL, apiKey string, overrides ...string) map[string]string {
	t.Helper()
	env := map[string]string{
		"S3_ENDPOINT":        s3URL,
		"STAGE":              "local",
		"TABLE_NAME":         storetest.TableName(),
		"DYNAMODB_ENDPOINT":  storetest.Endpoint(),
		"JWT_SECRET":         "t1:" + rand.Text() + rand.Text(),
		"API_KEY":            apiKey,
		"APPLE_JWKS_URL":     appleURL,
		"ALLOW_OPEN_SIGNUP":  "true",
		"LOG_LEVEL":          "debug",
		"CLAUDE_PATH":        claudetest.FakeCLI(t),
		"CLAUDE_WORK_ROOT":   sandboxtest.Dir(t),
		"CLAUDE_CONFIG_ROOT": sandboxtest.Dir(t),
	}
	for i := 0; i+1 < len(overrides); i += 2 {
		env[overrides[i]] = overrides[i+1]
	}
	return env
}
