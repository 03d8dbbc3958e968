package runtimetest

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ovrlrd/cloud/internal/devkit/applefake"
	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/devkit/samtemplate"
	"github.com/ovrlrd/cloud/internal/devkit/storetest"
)

// sampleEventFiles are the repository's sample events. Listing fails only
// on a malformed pattern; a missing event shows as a count short of
// sampleStatus.
func sampleEventFiles() []string {
	files, _ := samtemplate.SampleEvents(filepath.Join(repoRoot(), "events"))
	return files
}

// samLocalEnv is the environment `sam local invoke --env-vars
// events/env.json` gives logical's container.
func samLocalEnv(t *testing.T, tpl samtemplate.Template, logical string) map[string]string {
	t.Helper()
	vars, err := samtemplate.ReadSAMEnvVars(filepath.Join(repoRoot(), "events", "env.json"))
	if err != nil {
		t.Fatal(err)
	}
	env, err := tpl.SAMLocalEnv(logical, imageEnv(t), vars.For(logical))
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// Every sample event through the built bootstraps under the emulator, each
// function configured as `sam local invoke --env-vars events/env.json`
// configures it, with only the host rewritten: make dev's DynamoDB Local
// and S3 stand-in (host.docker.internal) are this run's. No function fails
// its init, each event gets the status the deployed stack gives it, and
// nothing calls AWS.
func TestSampleEventsUnderSAMLocal(t *testing.T) {
	_, bootstraps := built(t)
	tpl, err := samtemplate.Load(filepath.Join(repoRoot(), "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var strays []string
	aws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		strays = append(strays, r.Method+" "+r.URL.Path+" "+r.Header.Get("X-Amz-Target"))
		mu.Unlock()
		http.Error(w, `{"message":"not under sam local"}`, http.StatusForbidden)
	}))
	t.Cleanup(aws.Close)
	// The sign-in event's token is refused before any key is fetched; a
	// stand-in of Apple all the same, so a test run never leaves the
	// machine.
	apple := applefake.New()
	t.Cleanup(apple.Close)
	awsFiles := t.TempDir()

	s := &stack{fns: map[string]*deployed{}}
	for _, logical := range []string{"AuthFunction", "ChatFunction", "StreamFunction"} {
		env := samLocalEnv(t, tpl, logical)
		s3 := httptest.NewServer(s3Backend(t, env["SESSIONS_BUCKET"]))
		t.Cleanup(s3.Close)
		for k, v := range map[string]string{
			// The base image's, for the bootstrap run on this machine.
			"PATH":              "/usr/local/bin:/usr/bin:/bin",
			"DYNAMODB_ENDPOINT": storetest.Endpoint(),
			// This package's table, in the DynamoDB Local the packages share.
			"TABLE_NAME":                  storetest.TableName(),
			"S3_ENDPOINT":                 s3.URL,
			"APPLE_JWKS_URL":              apple.URL,
			"AWS_ENDPOINT_URL":            aws.URL,
			"AWS_EC2_METADATA_DISABLED":   "true",
			"AWS_CONFIG_FILE":             filepath.Join(awsFiles, "config"),
			"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(awsFiles, "credentials"),
		} {
			env[k] = v
		}
		bootstrap := bootstraps[strings.ToLower(strings.TrimSuffix(logical, "Function"))]
		if logical == "StreamFunction" {
			env["CLAUDE_PATH"] = claudetest.FakeCLI(t)
			freshTmp(t, env)
		}
		s.fns[logical] = &deployed{logical: logical, bootstrap: bootstrap, env: env, emu: startEmulator(t, logical, bootstrap, env)}
	}

	s.sampleEventsAnswer(t)
	mu.Lock()
	defer mu.Unlock()
	if len(strays) > 0 {
		t.Errorf("under sam local the functions called AWS: %s", strings.Join(strays, "; "))
	}
	for _, d := range s.fns {
		if out := d.emu.output.String(); strings.Contains(out, "init failed") {
			t.Errorf("%s: %s", d.logical, out)
		}
		t.Logf("%s: INIT %v", d.logical, d.emu.initDurations())
	}
}
