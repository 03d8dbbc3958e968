package samtemplate

// The environments the template is evaluated in offline: a sample stack's,
// and the one sam local gives a function's container.

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/ovrlrd/cloud/internal/devkit/devenv"
)

// Sample account and region for evaluating the template offline.
const (
	SampleAccount = "123456789012"
	SampleRegion  = "eu-west-1"
)

// SampleEnv is an Env in which every resource of the template exists: each
// resource's physical name is names[logical id], or the logical id in lower
// case, and its ARN is built from the name the way AWS builds it. params
// override parameter defaults.
func (t Template) SampleEnv(params, names map[string]string) Env {
	e := Env{
		Params: map[string]string{
			"AWS::AccountId": SampleAccount, "AWS::Region": SampleRegion,
			"AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com",
			"AWS::StackName": "ovrlrd-sample",
		},
		Refs:  map[string]string{},
		Attrs: map[string]string{},
	}
	maps.Copy(e.Params, params)
	prefix := "arn:aws:"
	rgnAcct := SampleRegion + ":" + SampleAccount + ":"
	for id, r := range t.Resources() {
		name := cmp.Or(names[id], strings.ToLower(id))
		e.Refs[id] = name
		switch r["Type"] {
		case "AWS::DynamoDB::Table":
			e.Attrs[id+".Arn"] = prefix + "dynamodb:" + rgnAcct + "table/" + name
		case "AWS::S3::Bucket":
			e.Attrs[id+".Arn"] = prefix + "s3:::" + name
			e.Attrs[id+".RegionalDomainName"] = name + ".s3." + SampleRegion + ".amazonaws.com"
		case "AWS::Logs::LogGroup":
			e.Attrs[id+".Arn"] = prefix + "logs:" + rgnAcct + "log-group:" + name + ":*"
		case "AWS::Serverless::Function":
			e.Attrs[id+".Arn"] = prefix + "lambda:" + rgnAcct + "function:" + name
			e.Attrs[id+"Url.FunctionUrl"] = "https://" + name + ".lambda-url." + SampleRegion + ".on.aws/"
		case "AWS::IAM::Role":
			e.Attrs[id+".Arn"] = prefix + "iam::" + SampleAccount + ":role/" + name
		case "AWS::SNS::Topic":
			e.Refs[id] = prefix + "sns:" + rgnAcct + name
		case "AWS::CloudFront::Distribution":
			e.Attrs[id+".DomainName"] = name + ".cloudfront.net"
		case "AWS::CloudFront::OriginAccessControl":
			e.Attrs[id+".Id"] = name // an id AWS picks; the name stands for it
		case "AWS::CloudFront::Function":
			e.Attrs[id+".FunctionARN"] = prefix + "cloudfront::" + SampleAccount + ":function/" + name
		case "AWS::KMS::Key":
			// A key's Ref is its key id, a UUID AWS picks; the name
			// stands for it.
			e.Attrs[id+".Arn"] = prefix + "kms:" + rgnAcct + "key/" + name
			e.Attrs[id+".KeyId"] = name
		}
	}
	return e
}

// SampleEvents returns the Lambda events among dir's *.json files, sorted:
// all but env.json, which is sam local's environment (--env-vars).
func SampleEvents(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	return slices.DeleteFunc(files, func(f string) bool { return filepath.Base(f) == "env.json" }), err
}

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
	if at(t.Resources()[function], "Properties", "PackageType") == "Image" {
		maps.Copy(env, image)
	}
	maps.Copy(env, map[string]string{
		"AWS_SAM_LOCAL":            "true",
		"AWS_LAMBDA_FUNCTION_NAME": function,
		"AWS_REGION":               devenv.SAMLocalRegion,
		"AWS_DEFAULT_REGION":       devenv.SAMLocalRegion,
		"AWS_ACCESS_KEY_ID":        "defaultkey",
		"AWS_SECRET_ACCESS_KEY":    "defaultsecret",
	})
	e := t.SampleEnv(nil, nil)
	for id := range e.Refs {
		e.Refs[id] = id
	}
	for name := range t.Parameters() {
		e.Refs[name] = name // for a parameter without a default
	}
	for name, raw := range declared {
		v, err := t.Eval(raw, e)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", function, name, err)
		}
		env[name] = ""
		if v != nil {
			env[name] = fmt.Sprint(v)
		}
		if o, ok := overrides[name]; ok {
			env[name] = o
		}
	}
	return env, nil
}

var (
	// A comment line is dropped whole, even inside a continued instruction.
	dockerComment = regexp.MustCompile(`(?m)^[ \t]*#.*\n`)
	// A line ending in a backslash continues on the next.
	dockerContinuation = regexp.MustCompile(`\\[ \t]*\r?\n`)
)

// DockerfileEnv reads the ENV instructions of a Dockerfile's final stage:
// the environment the stream function's image sets beside the template's.
func DockerfileEnv(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	text := dockerContinuation.ReplaceAllString(dockerComment.ReplaceAllString(string(b), ""), " ")
	env := map[string]string{}
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(strings.ToUpper(line), "FROM ") {
			clear(env) // only the final stage counts
		}
		if rest, ok := strings.CutPrefix(line, "ENV "); ok {
			for _, kv := range strings.Fields(rest) {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
		}
	}
	return env, nil
}
