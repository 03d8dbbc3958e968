package samtemplate_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dlclark/regexp2"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/ovrlrd/cloud/internal/devkit/samtemplate"
)

// schemasDir holds the SAM resource schema and the CloudFormation registry
// schemas, copied from their public sources (testdata/schemas/README.md):
// the tests need nothing outside the repository and no network.
const schemasDir = "testdata/schemas"

// ecmaRegexp lets the validator run the schemas' ECMAScript patterns (with
// look-ahead), which Go's regexp cannot.
type ecmaRegexp regexp2.Regexp

func (re *ecmaRegexp) MatchString(s string) bool {
	ok, err := (*regexp2.Regexp)(re).MatchString(s)
	return err == nil && ok
}

func (re *ecmaRegexp) String() string { return (*regexp2.Regexp)(re).String() }

func compileECMA(s string) (jsonschema.Regexp, error) {
	re, err := regexp2.Compile(s, regexp2.ECMAScript)
	if err != nil {
		return nil, err
	}
	return (*ecmaRegexp)(re), nil
}

// compileSchema compiles one schema file, or the parts of it named by
// fragments ("#/definitions/..."). CloudFormation registry schemas name
// their own meta-schema by URL and refer to themselves as
// resource-schema.json; both are served from the file, with no network.
func compileSchema(t *testing.T, path string, fragments ...string) []*jsonschema.Schema {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if m, ok := doc.(map[string]any); ok {
		if s, _ := m["$schema"].(string); !strings.Contains(s, "json-schema.org") {
			delete(m, "$schema")
		}
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	c.UseRegexpEngine(compileECMA)
	c.UseLoader(offline{})
	url := "file:///schemas/" + filepath.Base(path)
	for _, u := range []string{url, "file:///schemas/resource-schema.json"} {
		if err := c.AddResource(u, doc); err != nil {
			t.Fatal(err)
		}
	}
	if len(fragments) == 0 {
		fragments = []string{""}
	}
	var out []*jsonschema.Schema
	for _, f := range fragments {
		sch, err := c.Compile(url + f)
		if err != nil {
			t.Fatalf("%s%s: %v", path, f, err)
		}
		out = append(out, sch)
	}
	return out
}

type offline struct{}

func (offline) Load(url string) (any, error) {
	return nil, fmt.Errorf("%s: schemas are validated offline; nothing is fetched", url)
}

// instance turns a decoded template value into what the validator expects
// (numbers as json.Number).
func instance(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// variants are parameter sets the template is checked in: the defaults
// (every option off) and every option on. CloudFormation resolves the
// intrinsics with them; the schemas then see the values AWS would get.
func variants() map[string]map[string]string {
	return map[string]map[string]string{
		"defaults": {"SsmPrefix": "/ovrlrd/dev"},
		"all options": {
			"Stage": "prod", "SsmPrefix": "/ovrlrd/prod", "ClaudeProvider": "bedrock",
			"CorsOrigins": "https://app.example.com,https://admin.example.com",
			"DomainName":  "api.example.com",
			"CertificateArn": "arn:aws:acm:us-east-1:" + samtemplate.SampleAccount +
				":certificate/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d",
			"AlarmEmail": "ops@example.com", "ApnsKeyId": "ABCDE12345", "AppleTeamId": "TEAM123456",
			"ApprovedEmails": "a@example.com", "ApprovedAppleIds": "001122.abc", "AllowOpenSignup": "false",
			"DailyBudgetUsd": "12.5", "LogLevel": "warn", "LogRetentionDays": "90",
		},
	}
}

// The whole template, as CloudFormation would hand it to the SAM transform,
// against the official SAM schema; each SAM resource and Globals also
// against their own definitions, which name the faulty property plainly.
func TestTemplateMatchesSAMSchema(t *testing.T) {
	tpl := load(t)
	const def = "#/definitions/"
	frags := []string{"", def + "__main____Globals"}
	types := map[string]int{}
	for _, r := range tpl.Resources() {
		typ, _ := r["Type"].(string)
		if kind, ok := strings.CutPrefix(typ, "AWS::Serverless::"); ok && types[typ] == 0 {
			types[typ] = len(frags)
			frags = append(frags, def+"samtranslator__internal__schema_source__aws_serverless_"+strings.ToLower(kind)+"__Resource")
		}
	}
	schs := compileSchema(t, filepath.Join(schemasDir, "sam.schema.json"), frags...)
	for name, params := range variants() {
		t.Run(name, func(t *testing.T) {
			v, err := tpl.Eval(map[string]any(tpl), tpl.SampleEnv(params, nil))
			if err != nil {
				t.Fatal(err)
			}
			doc := instance(t, v).(map[string]any)
			failed := false
			if err := schs[1].Validate(doc["Globals"]); err != nil {
				t.Errorf("Globals:\n%s", describe(err))
				failed = true
			}
			res := doc["Resources"].(map[string]any)
			for _, id := range sortedKeys(res) {
				typ, _ := res[id].(map[string]any)["Type"].(string)
				if i, ok := types[typ]; ok {
					if err := schs[i].Validate(res[id]); err != nil {
						t.Errorf("%s (%s):\n%s", id, typ, describe(err))
						failed = true
					}
				}
			}
			if err := schs[0].Validate(doc); err != nil && !failed {
				t.Errorf("template:\n%s", describe(err))
			}
		})
	}
}

// Resource types without a registry schema in schemasDir, each with where
// else it is checked.
var noSchema = map[string]string{
	"AWS::S3::BucketPolicy": "TestBucketDeniesInsecureTransport, TestWebBucketIsPrivate",
	"AWS::IAM::RolePolicy":  "TestGrantsPerFunction",
}

// Every plain CloudFormation resource's Properties against its type's
// registry schema, in every variant.
func TestResourcesMatchRegistrySchemas(t *testing.T) {
	tpl := load(t)
	compiled := map[string]*jsonschema.Schema{}
	checked := map[string]bool{}
	for name, params := range variants() {
		env := tpl.SampleEnv(params, nil)
		for _, id := range tpl.ResourceIDs() {
			r := tpl.Resources()[id]
			typ, _ := r["Type"].(string)
			if strings.HasPrefix(typ, "AWS::Serverless::") {
				continue // the SAM schema covers these
			}
			on, err := tpl.Creates(id, env)
			if err != nil {
				t.Fatal(err)
			}
			if !on {
				continue
			}
			if _, ok := noSchema[typ]; ok {
				continue
			}
			sch, ok := compiled[typ]
			if !ok {
				file := filepath.Join(schemasDir, strings.ReplaceAll(typ, "::", "-")+".json")
				if _, err := os.Stat(file); err != nil {
					t.Errorf("%s: no schema %s for %s; add the type to the Makefile's REGISTRY_SCHEMAS and run make schemas, "+
						"or add it to noSchema with where it is checked", id, filepath.Base(file), typ)
					continue
				}
				sch = compileSchema(t, file)[0]
				compiled[typ] = sch
			}
			props, err := tpl.Eval(r["Properties"], env)
			if err != nil {
				t.Fatalf("%s: %v", id, err)
			}
			if props == nil {
				props = map[string]any{}
			}
			if err := sch.Validate(instance(t, props)); err != nil {
				t.Errorf("%s (%s), %s:\n%s", id, typ, name, describe(err))
			}
			checked[typ] = true
		}
	}
	t.Logf("validated against registry schemas: %v", sortedKeys(checked))
}

// describe flattens a validation error to its leaves, one per line.
func describe(err error) string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err.Error()
	}
	var lines []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			lines = append(lines, "/"+strings.Join(e.InstanceLocation, "/")+": "+e.Error())
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	if len(lines) > 30 {
		lines = append(lines[:30], fmt.Sprintf("... and %d more", len(lines)-30))
	}
	return strings.Join(lines, "\n")
}

// sortedKeys keeps the reports of maps that are not the template's
// resources (those have ResourceIDs) in one order from run to run.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// Every parameter's default and the values the variants use satisfy its
// own constraints, as CloudFormation checks them before anything is created.
func TestParameterConstraints(t *testing.T) {
	tpl := load(t)
	params := tpl.Parameters()
	check := func(name, value string) {
		p := params[name]
		if p == nil {
			t.Errorf("variant sets %s, which is not a parameter", name)
			return
		}
		if pat, ok := p["AllowedPattern"].(string); ok && !regexp.MustCompile(pat).MatchString(value) {
			t.Errorf("%s: %q does not match AllowedPattern %s", name, value, pat)
		}
		if allowed, ok := p["AllowedValues"].([]any); ok {
			found := false
			for _, a := range allowed {
				found = found || fmt.Sprint(a) == value
			}
			if !found {
				t.Errorf("%s: %q is not in AllowedValues %v", name, value, allowed)
			}
		}
	}
	for name, p := range params {
		if def, ok := p["Default"]; ok {
			check(name, fmt.Sprint(def))
		}
	}
	for _, vs := range variants() {
		for name, v := range vs {
			check(name, v)
		}
	}
}
