package samtemplate_test

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/devkit/samtemplate"
)

// stageRole is a role as CloudFormation names it in a stage's stack.
const stageRole = "arn:aws:iam::" + samtemplate.SampleAccount + ":role/ovrlrd-dev-StreamRole-1A2B3C4D5E6F"

// The deploy role creates, writes or re-trusts a role only when the role
// carries the deploy stack's boundary (iam:PermissionsBoundary is the
// boundary the request sets, or the role's own), never removes a role's
// boundary, never changes the boundary policy, and never takes a session
// in a stage role; the last three by explicit Deny, which no grant added
// to it later would undo.
func TestDeployRoleWritesOnlyBoundedRoles(t *testing.T) {
	dt := loadDeploy(t)
	st := deployStatements(t, dt, deployVariants()["new provider"])
	boundary := rolesBoundary(t, dt)
	withBoundary := func(action, arn string) samtemplate.Request {
		return samtemplate.Request{Action: action, Resource: stageRole, Context: map[string]string{"iam:PermissionsBoundary": arn}}
	}
	others := []string{
		"arn:aws:iam::aws:policy/AdministratorAccess",
		"arn:aws:iam::" + samtemplate.SampleAccount + ":policy/ovrlrd-app-boundary-wide",
		"arn:aws:iam::210987654321:policy/ovrlrd-app-boundary",
		strings.ToUpper(boundary),
	}
	for _, a := range []string{"iam:CreateRole", "iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy", "iam:PutRolePermissionsBoundary"} {
		if !samtemplate.Allows(st, withBoundary(a, boundary)) {
			t.Errorf("%s with the boundary %s refused", a, boundary)
		}
		if samtemplate.Allows(st, samtemplate.Request{Action: a, Resource: stageRole}) {
			t.Errorf("%s allowed on a role without a boundary", a)
		}
		for _, other := range others {
			if samtemplate.Allows(st, withBoundary(a, other)) {
				t.Errorf("%s allowed with the boundary %s", a, other)
			}
		}
	}
	for _, r := range []samtemplate.Request{
		withBoundary("iam:AttachRolePolicy", boundary),
		{Action: "iam:AttachRolePolicy", Resource: stageRole},
	} {
		if samtemplate.Allows(st, r) {
			t.Errorf("the deploy role may %s", r)
		}
	}

	// A grant of everything added beside the role's own policy still
	// leaves these refused: only an explicit Deny does that.
	everything := append([]samtemplate.Statement{{Sid: "Everything", Effect: "Allow", Actions: []string{"*"}, Resources: []string{"*"}}}, st...)
	for _, r := range []samtemplate.Request{
		withBoundary("iam:DeleteRolePermissionsBoundary", boundary),
		{Action: "iam:DeleteRolePermissionsBoundary", Resource: stageRole},
		{Action: "iam:DeleteRolePermissionsBoundary", Resource: "arn:aws:iam::" + samtemplate.SampleAccount + ":role/other"},
		{Action: "iam:CreatePolicyVersion", Resource: boundary},
		{Action: "iam:DeletePolicyVersion", Resource: boundary},
		{Action: "iam:SetDefaultPolicyVersion", Resource: boundary},
		{Action: "iam:DeletePolicy", Resource: boundary},
		{Action: "sts:AssumeRole", Resource: stageRole},
	} {
		if samtemplate.Allows(everything, r) {
			t.Errorf("no explicit Deny of %s", r)
		}
	}
}

// The deploy stack's boundary output is what template.yaml's
// RolesPermissionsBoundary takes; with it, every role of template.yaml
// carries it (and is still a valid AWS::IAM::Role), and without it none
// carries a boundary.
func TestRolesCarryTheBoundary(t *testing.T) {
	tpl := load(t)
	boundary := rolesBoundary(t, loadDeploy(t))
	p := tpl.Parameters()["RolesPermissionsBoundary"]
	if p == nil {
		t.Fatal("template.yaml has no parameter RolesPermissionsBoundary")
	}
	pattern := regexp.MustCompile(p["AllowedPattern"].(string))
	for value, want := range map[string]bool{
		boundary: true, "": true,
		"arn:aws-cn:iam::" + samtemplate.SampleAccount + ":policy/path/ovrlrd-app-boundary": true,
		"arn:aws:iam::aws:policy/AdministratorAccess":                                       false,
		"arn:aws:iam::" + samtemplate.SampleAccount + ":role/ovrlrd-app-boundary":           false,
		"*": false, " " + boundary: false,
	} {
		if got := pattern.MatchString(value); got != want {
			t.Errorf("RolesPermissionsBoundary %q accepted %v, want %v", value, got, want)
		}
	}

	schema := compileSchema(t, filepath.Join(schemasDir, "AWS-IAM-Role.json"))[0]
	roles := 0
	for _, id := range tpl.ResourceIDs() {
		if tpl.Resources()[id]["Type"] != "AWS::IAM::Role" {
			continue
		}
		roles++
		for value, want := range map[string]any{boundary: boundary, "": nil} {
			v, err := tpl.Eval(tpl.Resources()[id]["Properties"], tpl.SampleEnv(map[string]string{"SsmPrefix": "/ovrlrd/dev", "RolesPermissionsBoundary": value}, nil))
			if err != nil {
				t.Fatalf("%s: %v", id, err)
			}
			if got := v.(map[string]any)["PermissionsBoundary"]; got != want {
				t.Errorf("%s with RolesPermissionsBoundary %q: PermissionsBoundary %v, want %v", id, value, got, want)
			}
			if err := schema.Validate(instance(t, v)); err != nil {
				t.Errorf("%s with RolesPermissionsBoundary %q:\n%s", id, value, describe(err))
			}
		}
	}
	if roles != len(functions) {
		t.Errorf("checked %d roles, want one per function (%d)", roles, len(functions))
	}
}

// boundaryStatements are the deploy stack's boundary policy's statements,
// as IAM would read them in the sample account.
func boundaryStatements(t *testing.T, dt samtemplate.Template) []samtemplate.Statement {
	t.Helper()
	doc, err := dt.Eval(props(t, dt, "AppRolesBoundary")["PolicyDocument"], deployEnv(t, dt, deployVariants()["new provider"]))
	if err != nil {
		t.Fatal(err)
	}
	// A role holding the document as its one policy, so that the
	// package's own reader parses it.
	holder := samtemplate.Template{"Resources": map[string]any{"Holder": map[string]any{
		"Type":       "AWS::IAM::Role",
		"Properties": map[string]any{"Policies": []any{map[string]any{"PolicyName": "boundary", "PolicyDocument": doc}}},
	}}}
	st, err := holder.RoleStatements("Holder", samtemplate.Env{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.Effect != "Allow" || len(s.Condition) > 0 {
			t.Errorf("boundary %s: want plain Allow statements", s.Sid)
		}
		for _, r := range s.Resources {
			// A role resource is matched against these as text, which is
			// containment only when '*' is the one wildcard.
			if strings.Contains(r, "?") {
				t.Errorf("boundary %s: resource %s has a '?'", s.Sid, r)
			}
		}
	}
	return st
}

// roleGrantEnvs are the environments in which a deploy creates the roles:
// each stage samconfig.toml deploys, with every Claude provider and a
// Bedrock model or none, the resources named as CloudFormation names them.
func roleGrantEnvs(t *testing.T, tpl samtemplate.Template) map[string]samtemplate.Env {
	t.Helper()
	out := map[string]samtemplate.Env{}
	for _, stage := range deployStages(t) {
		names := map[string]string{}
		for id, r := range tpl.Resources() {
			names[id] = stage.stack + "-" + id + "-1A2B3C4D5E6F"
			if r["Type"] == "AWS::S3::Bucket" {
				names[id] = strings.ToLower(names[id])
			}
		}
		for _, claude := range []map[string]string{
			{"ClaudeProvider": "anthropic"}, {"ClaudeProvider": "oauth"}, {"ClaudeProvider": "bedrock"},
			{"ClaudeProvider": "bedrock", "ClaudeModel": "us.anthropic.claude-sonnet-4-5-20250929-v1:0"},
		} {
			params := map[string]string{"SsmPrefix": stage.ssmPrefix}
			for k, v := range claude {
				params[k] = v
			}
			e := tpl.SampleEnv(params, names)
			e.Params["AWS::StackName"] = stage.stack
			out[stage.stack+" "+claude["ClaudeProvider"]+" "+claude["ClaudeModel"]] = e
		}
	}
	return out
}

// Every action a role of template.yaml grants, on every resource it grants
// it on, is within the boundary (a permission outside it would silently not
// work in AWS); and the boundary allows no action that no role grants, nor
// the grants' actions beyond the app's own resources.
func TestBoundaryCoversRoleGrants(t *testing.T) {
	tpl, dt := load(t), loadDeploy(t)
	boundary := boundaryStatements(t, dt)
	granted := map[string]bool{}
	for name, e := range roleGrantEnvs(t, tpl) {
		for _, fn := range functions {
			role, err := tpl.RoleOf(fn)
			if err != nil {
				t.Fatal(err)
			}
			st, err := tpl.RoleStatements(role, e)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range st {
				if s.Effect != "Allow" {
					continue
				}
				for _, a := range s.Actions {
					granted[strings.ToLower(a)] = true
					for _, r := range s.Resources {
						if !samtemplate.Allows(boundary, samtemplate.Request{Action: a, Resource: r}) {
							t.Errorf("%s, %s %s: %s on %s is outside the boundary", name, role, s.Sid, a, r)
						}
					}
				}
			}
		}
	}
	for _, s := range boundary {
		for _, a := range s.Actions {
			if !granted[strings.ToLower(a)] {
				t.Errorf("boundary %s: %s, which no role grants", s.Sid, a)
			}
		}
	}

	acct, region := samtemplate.SampleAccount, samtemplate.SampleRegion
	for _, r := range []samtemplate.Request{
		{Action: "s3:GetObject", Resource: "arn:aws:s3:::other-bucket/users/u1/work.tar.gz"},
		{Action: "s3:GetObject", Resource: "arn:aws:s3:::ovrlrd-dev-sessionsbucket-1a2b3c4d5e6f/other/key"},
		{Action: "s3:ListBucket", Resource: "arn:aws:s3:::aws-sam-cli-managed-default-samclisourcebucket-1a2b3c4d5e6f"},
		{Action: "dynamodb:GetItem", Resource: "arn:aws:dynamodb:" + region + ":" + acct + ":table/other"},
		{Action: "ssm:GetParameters", Resource: "arn:aws:ssm:" + region + ":" + acct + ":parameter/other/jwt-keys"},
		{Action: "lambda:InvokeFunction", Resource: "arn:aws:lambda:" + region + ":" + acct + ":function:other"},
		{Action: "bedrock:InvokeModel", Resource: "arn:aws:bedrock:" + region + "::foundation-model/amazon.titan-text-express-v1"},
		{Action: "logs:PutLogEvents", Resource: "arn:aws:logs:" + region + ":" + acct + ":log-group:other:*"},
	} {
		if samtemplate.Allows(boundary, r) {
			t.Errorf("the boundary allows %s", r)
		}
	}
}
