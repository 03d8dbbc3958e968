package samtemplate_test

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

// samconfig reads samconfig.toml's flat sections: "env.command.parameters"
// -> key -> value (strings unquoted).
func samconfig(t *testing.T) map[string]map[string]string {
	t.Helper()
	f, err := os.Open("../../../samconfig.toml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[string]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
			out[section] = map[string]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("samconfig.toml: %q", line)
			}
			v = strings.TrimSpace(v)
			if u, err := strconv.Unquote(v); err == nil {
				v = u
			}
			if section != "" {
				out[section][strings.TrimSpace(k)] = v
			}
		}
	}
	return out
}

// dev (default) and prod deploy distinct stacks with valid parameters, the
// capability the roles need and an image repository for the stream
// function.
func TestSamconfig(t *testing.T) {
	cfg := samconfig(t)
	params := load(t).Parameters()
	stacks := map[string]bool{}
	for env, stage := range map[string]string{"default": "dev", "prod": "prod"} {
		stack := cfg[env+".global.parameters"]["stack_name"]
		if stack == "" || stacks[stack] {
			t.Errorf("%s: stack_name %q", env, stack)
		}
		stacks[stack] = true
		d := cfg[env+".deploy.parameters"]
		if d == nil {
			t.Fatalf("no [%s.deploy.parameters]", env)
		}
		if !strings.Contains(d["capabilities"], "CAPABILITY_IAM") || d["resolve_image_repos"] != "true" || d["resolve_s3"] != "true" {
			t.Errorf("%s deploy parameters %v", env, d)
		}
		overrides := map[string]string{}
		for _, kv := range strings.Fields(d["parameter_overrides"]) {
			k, v, _ := strings.Cut(kv, "=")
			if _, ok := params[k]; !ok {
				t.Errorf("%s: parameter_overrides sets %s, which template.yaml does not declare", env, k)
			}
			overrides[k] = v
		}
		if overrides["Stage"] != stage || !strings.HasSuffix(overrides["SsmPrefix"], "/"+stage) {
			t.Errorf("%s: overrides %v, want Stage=%s and an SsmPrefix of its own", env, overrides, stage)
		}
	}
}
