package samtemplate_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/devkit/devenv"
	"github.com/ovrlrd/cloud/internal/devkit/samtemplate"
)

// The configuration each function loads.
var functionConfig = map[string]config.Function{
	"AuthFunction": config.Auth, "ChatFunction": config.Chat, "StreamFunction": config.Stream,
}

// samEnvVars reads events/env.json, `sam local invoke --env-vars`'s file.
func samEnvVars(t *testing.T) samtemplate.SAMEnvVars {
	t.Helper()
	vars, err := samtemplate.ReadSAMEnvVars("../../../events/env.json")
	if err != nil {
		t.Fatal(err)
	}
	return vars
}

// samContainerEnv is the environment SAM CLI gives fn's container with
// override for env.json's values, and the Runtime API address the emulator
// inside sets.
func samContainerEnv(t *testing.T, tpl samtemplate.Template, fn string, override map[string]string) map[string]string {
	t.Helper()
	env, err := tpl.SAMLocalEnv(fn, dockerEnv(t), override)
	if err != nil {
		t.Fatal(err)
	}
	env["AWS_LAMBDA_RUNTIME_API"] = "127.0.0.1:9001"
	return env
}

func loadSAM(fn string, env map[string]string) (config.Config, error) {
	getenv := func(k string) string { return env[k] }
	return config.LoadWith(context.Background(), functionConfig[fn], getenv, config.EnvSecrets(getenv))
}

// SAM passes a function only the variables its template environment
// declares: each variable env.json sets must be declared for every
// function it applies to, or sam local drops it silently. And each
// variable the template declares empty for sam local is set there.
func TestSAMLocalEnvVarsAreDeclared(t *testing.T) {
	tpl := load(t)
	vars := samEnvVars(t)
	if len(vars["Parameters"]) == 0 {
		t.Fatal("events/env.json has no Parameters")
	}
	for key, set := range vars {
		applies := functions
		if key != "Parameters" {
			if !slices.Contains(functions, key) {
				t.Errorf("events/env.json: %q is neither Parameters nor a function", key)
				continue
			}
			applies = []string{key}
		}
		for _, fn := range applies {
			declared := functionEnv(t, tpl, fn)
			for name := range set {
				if _, ok := declared[name]; !ok {
					t.Errorf("events/env.json sets %s for %s, whose template environment does not declare it: sam local would drop it", name, fn)
				}
			}
		}
	}
	globals, _ := path(map[string]any(tpl), "Globals", "Function", "Environment", "Variables").(map[string]any)
	for name, v := range globals {
		if _, ok := vars["Parameters"][name]; v == "" && !ok {
			t.Errorf("template.yaml declares %s empty, for sam local, but events/env.json does not set it", name)
		}
	}
}

// Each function loads its configuration in SAM CLI's container: the
// local stage, make dev's stand-ins, env.json's sample secrets.
func TestSAMLocalConfigurationLoads(t *testing.T) {
	tpl := load(t)
	for _, fn := range functions {
		over := samEnvVars(t).For(fn)
		c, err := loadSAM(fn, samContainerEnv(t, tpl, fn, over))
		if err != nil {
			t.Errorf("%s under sam local: %v", fn, err)
			continue
		}
		if c.Stage != config.Local || !c.InLambda || c.DynamoDBEndpoint != over["DYNAMODB_ENDPOINT"] ||
			c.S3Endpoint != over["S3_ENDPOINT"] || c.LocalAWSKey.Reveal() != over["LOCAL_AWS_KEY"] ||
			c.TableName != over["TABLE_NAME"] || c.SessionsBucket != over["SESSIONS_BUCKET"] ||
			c.APIKey.IsZero() || c.APIKey.Reveal() != over["API_KEY"] || len(c.JWTKeys) != 1 {
			t.Errorf("%s under sam local: not env.json's configuration: stage %s, endpoints %q %q, table %q, bucket %q",
				fn, c.Stage, c.DynamoDBEndpoint, c.S3Endpoint, c.TableName, c.SessionsBucket)
		}
	}
}

// Without each of env.json's variables in turn (SAM then passes the
// template's value), some function fails to load or loads another
// configuration: env.json sets nothing idle, and what the local stage
// cannot run without (the JWT key ring; the table and DynamoDB Local, whose
// template values are AWS's) is among what it sets.
func TestSAMLocalEnvVarsAreNeeded(t *testing.T) {
	tpl := load(t)
	needed := map[string]string{}
	for _, fn := range functions {
		over := samEnvVars(t).For(fn)
		full, err := loadSAM(fn, samContainerEnv(t, tpl, fn, over))
		if err != nil {
			t.Fatalf("%s: %v", fn, err)
		}
		for name := range over {
			without := map[string]string{}
			for k, v := range over {
				if k != name {
					without[k] = v
				}
			}
			c, err := loadSAM(fn, samContainerEnv(t, tpl, fn, without))
			switch {
			case err != nil:
				needed[name] = "required: " + err.Error()
			case !reflect.DeepEqual(c, full) && needed[name] == "":
				needed[name] = "changes the configuration"
			}
		}
	}
	for key, set := range samEnvVars(t) {
		for name := range set {
			if needed[name] == "" {
				t.Errorf("events/env.json %s sets %s, which changes nothing", key, name)
			}
		}
	}
	for _, name := range []string{"STAGE", "JWT_SECRET", "TABLE_NAME", "DYNAMODB_ENDPOINT", "LOCAL_AWS_KEY"} {
		if needed[name] == "" {
			t.Errorf("%s: the local stage needs it under sam local, and events/env.json does not set it", name)
		}
	}
	names := make([]string, 0, len(needed))
	for n := range needed {
		names = append(names, n+" ("+strings.SplitN(needed[n], ":", 2)[0]+")")
	}
	sort.Strings(names)
	t.Logf("events/env.json: %s", strings.Join(names, ", "))
}

// env.json points sam local at make dev's servers and data, from inside
// SAM's containers: the host's ports make dev listens on by default, the
// key, table and bucket make dev makes for sam local.
func TestSAMLocalEnvVarsAreMakeDevs(t *testing.T) {
	p := samEnvVars(t)["Parameters"]
	want := map[string]string{
		"DYNAMODB_ENDPOINT": "http://host.docker.internal:" + strconv.Itoa(devenv.DevDynamoDBPort),
		"S3_ENDPOINT":       "http://host.docker.internal:" + strconv.Itoa(devenv.DevS3Port),
		"LOCAL_AWS_KEY":     devenv.SAMLocalKey,
		"TABLE_NAME":        devenv.DevTable,
		"SESSIONS_BUCKET":   devenv.SAMLocalBucket,
	}
	for name, v := range want {
		if p[name] != v {
			t.Errorf("events/env.json %s = %q, want make dev's %q", name, p[name], v)
		}
	}
	// samconfig.toml gives plain `sam local invoke` env.json and the
	// region of sam local's table (a DynamoDB Local database is per key
	// and region).
	li := samconfig(t)["default.local_invoke.parameters"]
	if li["env_vars"] != "events/env.json" || li["region"] != devenv.SAMLocalRegion {
		t.Errorf("samconfig.toml [default.local_invoke.parameters] %v, want env_vars events/env.json and region %s", li, devenv.SAMLocalRegion)
	}
	// Committed, so samples in plain sight: nobody takes them for secrets.
	for _, name := range []string{"JWT_SECRET", "API_KEY"} {
		if !strings.Contains(p[name], "not-a-secret") {
			t.Errorf("events/env.json %s does not say it is not a secret", name)
		}
	}
}

// The sample events send env.json's API key, so under sam local they pass
// the key check and reach their routes.
func TestSAMLocalAPIKeyIsTheEvents(t *testing.T) {
	key := samEnvVars(t)["Parameters"]["API_KEY"]
	files, err := samtemplate.SampleEvents("../../../events")
	if err != nil {
		t.Fatal(err)
	}
	sent := 0
	for _, f := range files {
		var ev struct {
			Headers map[string]string `json:"headers"`
		}
		b, err := os.ReadFile(f)
		if err == nil {
			err = json.Unmarshal(b, &ev)
		}
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for h, v := range ev.Headers {
			if strings.EqualFold(h, "x-api-key") {
				sent++
				if v != key {
					t.Errorf("%s sends x-api-key %q, events/env.json's API_KEY is %q", filepath.Base(f), v, key)
				}
			}
		}
	}
	if sent == 0 {
		t.Error("no sample event sends an API key")
	}
}
