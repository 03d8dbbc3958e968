package samtemplate

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"

	"github.com/ovrlrd/cloud/internal/config"
)

// SAMEnvVars is a `sam local invoke --env-vars` file: "Parameters" applies
// to every function, a logical id's object to that function only.
type SAMEnvVars map[string]map[string]string

// ReadSAMEnvVars reads an --env-vars file.
func ReadSAMEnvVars(path string) (SAMEnvVars, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var vars SAMEnvVars
	if err := json.Unmarshal(b, &vars); err != nil {
		return nil, fmt.Errorf("%s: %w (want objects of strings)", path, err)
	}
	return vars, nil
}

// For returns what the file gives function: its own object wins over
// Parameters, as in SAM CLI.
func (v SAMEnvVars) For(function string) map[string]string {
	out := map[string]string{}
	maps.Copy(out, v["Parameters"])
	maps.Copy(out, v[function])
	return out
}

// SAMLocalEnv is the environment `sam local invoke` gives function's
// container, but for AWS_LAMBDA_RUNTIME_API, which the emulator inside sets:
// image (its Dockerfile's ENV, see DockerfileEnv) when function is a
// container image, then SAM CLI's own variables, then every variable the
// template declares. SAM resolves those without a stack: a parameter
// without a default is its own name, a resource's Ref its logical id, and
// what stays unresolved is empty; overrides (SAMEnvVars.For) replace them.
// SAM passes no variable the template does not declare, so an override of
// one is dropped here too.
func (t Template) SAMLocalEnv(function string, image, overrides map[string]string) (map[string]string, error) {
	declared, err := t.FunctionVariables(function)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	props, _ := t.Resources()[function]["Properties"].(map[string]any)
	if props["PackageType"] == "Image" {
		maps.Copy(env, image)
	}
	maps.Copy(env, map[string]string{
		"AWS_SAM_LOCAL":            "true",
		"AWS_LAMBDA_FUNCTION_NAME": function,
		"AWS_REGION":               config.SAMLocalRegion,
		"AWS_DEFAULT_REGION":       config.SAMLocalRegion,
		"AWS_ACCESS_KEY_ID":        "defaultkey",
		"AWS_SECRET_ACCESS_KEY":    "defaultsecret",
	})
	e := t.samLocalResolution()
	for name, raw := range declared {
		v, err := t.Eval(raw, e)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", function, name, err)
		}
		switch v.(type) {
		case map[string]any, []any, nil:
			env[name] = ""
		default:
			env[name] = fmt.Sprint(v)
		}
		if o, ok := overrides[name]; ok {
			env[name] = o
		}
	}
	return env, nil
}

// samLocalResolution is the Env SAM CLI resolves intrinsics with locally.
func (t Template) samLocalResolution() Env {
	params := map[string]string{}
	for name, p := range t.Parameters() {
		if _, ok := p["Default"]; !ok {
			params[name] = name
		}
	}
	ids := map[string]string{}
	for id := range t.Resources() {
		ids[id] = id
	}
	return t.SampleEnv(params, ids)
}
