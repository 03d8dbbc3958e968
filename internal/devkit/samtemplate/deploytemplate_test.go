package samtemplate_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/devkit/samtemplate"
)

// The stack that creates GitHub's OIDC provider and the role deploy.yml
// assumes (plain CloudFormation, deployed once by hand).
const deployTemplate = "../../../deploy/github-oidc.yaml"

const (
	deployRepo   = "octo-org/octo-repo"
	providerARN  = "arn:aws:iam::" + samtemplate.SampleAccount + ":oidc-provider/token.actions.githubusercontent.com"
	deployStack  = "ovrlrd-github-deploy" // the stack name the template's header tells to use
	subClaim     = "token.actions.githubusercontent.com:sub"
	audClaim     = "token.actions.githubusercontent.com:aud"
	stsAudience  = "sts.amazonaws.com"
	assumeAction = "sts:AssumeRoleWithWebIdentity"
)

// Actions the deploy role holds on every resource ("*"), each because AWS
// grants it on nothing narrower.
var deployStarOnly = map[string]string{
	"ecr:GetAuthorizationToken":     "the registry login token is the account's",
	"logs:CreateLogDelivery":        "log deliveries (the HTTP API's access logs) have no resource type",
	"logs:GetLogDelivery":           "as CreateLogDelivery",
	"logs:UpdateLogDelivery":        "as CreateLogDelivery",
	"logs:DeleteLogDelivery":        "as CreateLogDelivery",
	"logs:ListLogDeliveries":        "as CreateLogDelivery",
	"logs:PutResourcePolicy":        "CloudWatch Logs' resource policies are the account's",
	"logs:DescribeResourcePolicies": "as PutResourcePolicy",
	"kms:CreateKey":                 "a key has no ARN before it exists (the projects' key, template.yaml ProjectsKey)",
	"kms:ListAliases":               "listing a region's aliases has no resource type",
	// Creating these is authorized on no resource: the Service
	// Authorization Reference lists no resource type for them.
	"cloudfront:CreateDistribution":          "a distribution has no ARN before it exists (its id is AWS's)",
	"cloudfront:CreateOriginAccessControl":   "as CreateDistribution (the web client's origin access control)",
	"cloudfront:CreateResponseHeadersPolicy": "as CreateDistribution (the web client's security headers)",
	"cloudfront:CreateFunction":              "as CreateDistribution (the web client's index function)",
}

func loadDeploy(t *testing.T) samtemplate.Template {
	t.Helper()
	tpl, err := samtemplate.Load(deployTemplate)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// deployVariants are the parameter sets the stack is checked in: creating
// the provider, and naming the account's existing one.
func deployVariants() map[string]map[string]string {
	return map[string]map[string]string{
		"new provider":      {"Repository": deployRepo},
		"existing provider": {"Repository": deployRepo, "ExistingOidcProviderArn": providerARN},
	}
}

// deployEnv is the sample environment of the stack: the provider's and the
// boundary policy's Refs are their ARNs, as IAM returns them, and the role
// has the name the template gives.
func deployEnv(t *testing.T, tpl samtemplate.Template, params map[string]string) samtemplate.Env {
	t.Helper()
	e := tpl.SampleEnv(params, nil)
	name, err := tpl.EvalString(props(t, tpl, "DeployRole")["RoleName"], e)
	if err != nil {
		t.Fatal(err)
	}
	policy, err := tpl.EvalString(props(t, tpl, "AppRolesBoundary")["ManagedPolicyName"], e)
	if err != nil {
		t.Fatal(err)
	}
	e = tpl.SampleEnv(params, map[string]string{"DeployRole": name})
	e.Params["AWS::StackName"] = deployStack
	e.Refs["GitHubOidcProvider"] = providerARN
	e.Refs["AppRolesBoundary"] = "arn:aws:iam::" + samtemplate.SampleAccount + ":policy/" + policy
	return e
}

// rolesBoundary is the deploy stack's RolesPermissionsBoundary output: the
// value every deploy of template.yaml passes as RolesPermissionsBoundary.
func rolesBoundary(t *testing.T, tpl samtemplate.Template) string {
	t.Helper()
	outputs, _ := tpl["Outputs"].(map[string]any)
	v, err := tpl.EvalString(path(outputs, "RolesPermissionsBoundary", "Value"), deployEnv(t, tpl, deployVariants()["new provider"]))
	if err != nil {
		t.Fatalf("output RolesPermissionsBoundary: %v", err)
	}
	return v
}

func deployStatements(t *testing.T, tpl samtemplate.Template, params map[string]string) []samtemplate.Statement {
	t.Helper()
	st, err := tpl.RoleStatements("DeployRole", deployEnv(t, tpl, params))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Plain CloudFormation (`aws cloudformation deploy`, no transform), every
// resource against its registry schema, every parameter default and
// sample value within its own constraints, and the values that must be
// refused refused.
func TestDeployTemplateMatchesRegistrySchemas(t *testing.T) {
	tpl := loadDeploy(t)
	if tr, ok := tpl["Transform"]; ok {
		t.Errorf("Transform %v: the stack is deployed with plain CloudFormation", tr)
	}
	checked := map[string]bool{}
	for name, params := range deployVariants() {
		env := deployEnv(t, tpl, params)
		for _, id := range tpl.ResourceIDs() {
			r := tpl.Resources()[id]
			if on, err := tpl.Creates(id, env); err != nil {
				t.Fatal(err)
			} else if !on {
				continue
			}
			typ, _ := r["Type"].(string)
			file := filepath.Join(schemasDir, strings.ReplaceAll(typ, "::", "-")+".json")
			if _, err := os.Stat(file); err != nil {
				t.Errorf("%s: no schema for %s; add it to the Makefile's REGISTRY_SCHEMAS and run make schemas", id, typ)
				continue
			}
			v, err := tpl.Eval(r["Properties"], env)
			if err != nil {
				t.Fatalf("%s: %v", id, err)
			}
			if err := compileSchema(t, file)[0].Validate(instance(t, v)); err != nil {
				t.Errorf("%s (%s), %s:\n%s", id, typ, name, describe(err))
			}
			checked[id+" "+typ] = true
		}
	}
	if len(checked) != 4 {
		t.Errorf("validated %v, want the boundary, the provider, the role and its edge policy", sortedKeys(checked))
	}

	params := tpl.Parameters()
	accepts := func(name, value string) bool {
		p := params[name]
		if p == nil {
			t.Fatalf("no parameter %s", name)
		}
		pat, _ := p["AllowedPattern"].(string)
		return regexp.MustCompile(pat).MatchString(value)
	}
	for name, p := range params {
		if def, ok := p["Default"]; ok && !accepts(name, fmt.Sprint(def)) {
			t.Errorf("%s: default %v refused by its own pattern", name, def)
		}
	}
	for _, vs := range deployVariants() {
		for name, v := range vs {
			if !accepts(name, v) {
				t.Errorf("%s: %q refused", name, v)
			}
		}
	}
	for name, bad := range map[string][]string{
		// A wildcard or another path segment would widen the trust.
		"Repository":              {"octo-org/*", "octo-org/octo-repo:*", "octo-org/octo-repo/x", "octo-repo", "octo-org/octo?repo"},
		"ExistingOidcProviderArn": {"arn:aws:iam::" + samtemplate.SampleAccount + ":oidc-provider/accounts.google.com", "*"},
		// The image repository's name is the stack name's letters and digits.
		"StackNamePrefix": {"Ovrlrd", "ovr-lrd", "ovrlrd*", "", "1ovrlrd"},
	} {
		for _, v := range bad {
			if accepts(name, v) {
				t.Errorf("%s: %q accepted", name, v)
			}
		}
	}
}

// The role trusts GitHub's tokens for STS of this repository's dev and prod
// environments, and nothing else: a ref subject would let a job without an
// environment (on main, or on a pushed tag) bypass the environments' rules.
func TestDeployRoleTrust(t *testing.T) {
	tpl := loadDeploy(t)
	for name, params := range deployVariants() {
		st, err := tpl.TrustStatements("DeployRole", deployEnv(t, tpl, params))
		if err != nil {
			t.Fatal(err)
		}
		if len(st) != 1 || st[0].Effect != "Allow" || !slices.Equal(st[0].Actions, []string{assumeAction}) ||
			!slices.Equal(st[0].Resources, []string{providerARN}) {
			t.Errorf("%s: trust %+v, want one Allow of %s for the provider %s", name, st, assumeAction, providerARN)
		}
		token := func(sub, aud string) samtemplate.Request {
			ctx := map[string]string{subClaim: sub}
			if aud != "" {
				ctx[audClaim] = aud
			}
			return samtemplate.Request{Action: assumeAction, Resource: providerARN, Context: ctx}
		}
		subs := map[string]bool{
			"repo:" + deployRepo + ":environment:dev":                   true,
			"repo:" + deployRepo + ":environment:prod":                  true,
			"repo:" + deployRepo + ":ref:refs/heads/main":               false,
			"repo:" + deployRepo + ":ref:refs/tags/v1.2.3":              false,
			"repo:" + deployRepo + ":ref:refs/heads/feature":            false,
			"repo:" + deployRepo + ":ref:refs/tags/release-1":           false,
			"repo:" + deployRepo + ":pull_request":                      false,
			"repo:" + deployRepo + ":environment:staging":               false,
			"repo:" + deployRepo + ":environment:prod-copy":             false,
			"repo:" + deployRepo + ":environment:*":                     false,
			"repo:octo-org/other:environment:dev":                       false,
			"repo:octo-org/octo-repo-fork:environment:prod":             false,
			"repo:evil/" + deployRepo + ":environment:prod":             false,
			"repo:" + deployRepo + ":environment:prod:x":                false,
			"repo:" + strings.ToUpper(deployRepo) + ":environment:prod": false,
		}
		for sub, want := range subs {
			if got := samtemplate.Allows(st, token(sub, stsAudience)); got != want {
				t.Errorf("%s: sub %s allowed %v, want %v", name, sub, got, want)
			}
		}
		prod := "repo:" + deployRepo + ":environment:prod"
		for _, aud := range []string{"", "https://github.com/octo-org", "sts.amazonaws.com.evil"} {
			if samtemplate.Allows(st, token(prod, aud)) {
				t.Errorf("%s: a token for audience %q is accepted", name, aud)
			}
		}
		other := samtemplate.Request{Action: assumeAction, Resource: "arn:aws:iam::" + samtemplate.SampleAccount +
			":oidc-provider/accounts.google.com", Context: token(prod, stsAudience).Context}
		if samtemplate.Allows(st, other) {
			t.Errorf("%s: another identity provider's token is accepted", name)
		}
	}
}

// What the role may do is readable and narrow: real IAM action names, no
// wildcard action, "*" resources only where AWS offers nothing narrower,
// roles passed to Lambda only, inline policies within IAM's size limit,
// and nothing that reaches the role itself, its stack, the users' data or
// the functions' secrets with its own grants.
func TestDeployRolePolicy(t *testing.T) {
	tpl := loadDeploy(t)
	params := deployVariants()["new provider"]
	st := deployStatements(t, tpl, params)
	for _, s := range st {
		if s.Effect != "Allow" && s.Effect != "Deny" {
			t.Errorf("%s: effect %s", s.Sid, s.Effect)
		}
		for _, a := range s.Actions {
			if strings.ContainsAny(a, "*?") || !samtemplate.ActionExists(a) {
				t.Errorf("%s: %q is not an IAM action (wildcards are not allowed)", s.Sid, a)
			}
		}
		if slices.Contains(s.Resources, "*") {
			for _, a := range s.Actions {
				if deployStarOnly[a] == "" {
					t.Errorf("%s: %s on every resource", s.Sid, a)
				}
			}
		}
		if slices.Contains(s.Actions, "iam:PassRole") {
			if len(s.Condition) != 1 || !slices.Equal(s.Condition["StringEquals"]["iam:PassedToService"], []string{"lambda.amazonaws.com"}) {
				t.Errorf("%s: iam:PassRole with condition %v, want iam:PassedToService lambda.amazonaws.com alone", s.Sid, s.Condition)
			}
		}
	}

	// IAM counts an inline policy's characters without whitespace, all of
	// a role's together.
	env := deployEnv(t, tpl, params)
	v, err := tpl.Eval(props(t, tpl, "DeployRole")["Policies"], env)
	if err != nil {
		t.Fatal(err)
	}
	size := 0
	for _, p := range v.([]any) {
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		size += len(b)
	}
	if size > 10240 {
		t.Errorf("inline policies of %d characters, IAM's limit for a role is 10240", size)
	}
	t.Logf("inline policies: %d of 10240 characters", size)
	// A managed policy has a limit of its own: 6144 characters.
	managed, _ := props(t, tpl, "DeployRole")["ManagedPolicyArns"].([]any)
	for _, m := range managed {
		id := fmt.Sprint(path(m, "Ref"))
		if id == "AppRolesBoundary" {
			t.Error("the deploy role holds the functions' boundary policy")
		}
		doc, err := tpl.Eval(path(props(t, tpl, id), "PolicyDocument"), env)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 6144 {
			t.Errorf("%s: %d characters, IAM's limit for a managed policy is 6144", id, len(b))
		}
		t.Logf("%s: %d of 6144 characters", id, len(b))
	}

	own := env.Attrs["DeployRole.Arn"]
	acct, region := samtemplate.SampleAccount, samtemplate.SampleRegion
	role := "arn:aws:iam::" + acct + ":role/ovrlrd-dev-StreamRole-1A2B3C4D5E6F"
	stack := func(name string) string {
		return "arn:aws:cloudformation:" + region + ":" + acct + ":stack/" + name + "/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
	}
	bucket := "arn:aws:s3:::ovrlrd-dev-sessionsbucket-1a2b3c4d5e6f"
	webBucket := "arn:aws:s3:::ovrlrd-dev-webbucket-1a2b3c4d5e6f"
	table := "arn:aws:dynamodb:" + region + ":" + acct + ":table/ovrlrd-dev-Table-1A2B3C4D5E6F"
	param := "arn:aws:ssm:" + region + ":" + acct + ":parameter/ovrlrd/dev/"
	denied := []samtemplate.Request{
		{Action: "iam:PutRolePolicy", Resource: own},
		{Action: "iam:DeleteRolePolicy", Resource: own},
		{Action: "iam:UpdateAssumeRolePolicy", Resource: own},
		{Action: "iam:AttachRolePolicy", Resource: own},
		{Action: "iam:PassRole", Resource: own, Context: map[string]string{"iam:PassedToService": "lambda.amazonaws.com"}},
		{Action: "iam:AttachRolePolicy", Resource: role},
		{Action: "iam:CreateRole", Resource: "arn:aws:iam::" + acct + ":role/admin"},
		{Action: "iam:PassRole", Resource: role, Context: map[string]string{"iam:PassedToService": "ec2.amazonaws.com"}},
		{Action: "iam:PassRole", Resource: role, Context: map[string]string{"iam:PassedToService": "cloudformation.amazonaws.com"}},
		{Action: "iam:PassRole", Resource: role},
		{Action: "iam:CreateOpenIDConnectProvider", Resource: providerARN},
		{Action: "sts:AssumeRole", Resource: role},
		{Action: "cloudformation:CreateChangeSet", Resource: stack(deployStack)},
		{Action: "cloudformation:UpdateStack", Resource: stack(deployStack)},
		{Action: "cloudformation:DeleteStack", Resource: stack("ovrlrd-prod")},
		{Action: "cloudformation:CreateChangeSet", Resource: stack("other-app")},
		{Action: "s3:GetObject", Resource: bucket + "/users/u1/conversations/c1/work.tar.gz"},
		{Action: "s3:PutObject", Resource: bucket + "/users/u1/conversations/c1/work.tar.gz"},
		{Action: "s3:DeleteObject", Resource: bucket + "/users/u1/conversations/c1/work.tar.gz"},
		// The web client's grant reaches its own bucket's web/ only.
		{Action: "s3:PutObject", Resource: bucket + "/web/index.html"},
		{Action: "s3:DeleteObject", Resource: bucket + "/web/index.html"},
		{Action: "s3:PutObject", Resource: webBucket + "/other/index.html"},
		{Action: "s3:PutObject", Resource: "arn:aws:s3:::other-webbucket-1a2b3c4d5e6f/web/index.html"},
		{Action: "s3:GetObject", Resource: webBucket + "/web/index.html"},
		{Action: "cloudfront:UpdateFunction", Resource: "arn:aws:cloudfront::" + acct + ":function/other-web-index"},
		{Action: "dynamodb:Scan", Resource: table},
		{Action: "dynamodb:GetItem", Resource: table},
		{Action: "ssm:GetParameters", Resource: param + "jwt-keys"},
		{Action: "ssm:GetParameters", Resource: param + "api-key"},
		{Action: "ssm:GetParameter", Resource: param + "origin-secret"},
		{Action: "lambda:InvokeFunction", Resource: "arn:aws:lambda:" + region + ":" + acct + ":function:ovrlrd-dev-AuthFunction-1A2B3C4D5E6F"},
		{Action: "lambda:CreateFunction", Resource: "arn:aws:lambda:" + region + ":" + acct + ":function:other"},
	}
	for _, r := range denied {
		if samtemplate.Allows(st, r) {
			t.Errorf("the deploy role may %s", r)
		}
	}
}
