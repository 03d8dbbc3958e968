package samtemplate_test

import (
	"context"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/devkit/samtemplate"
)

// Actions AWS only grants on every resource ("*").
var starOnly = []string{"xray:PutTraceSegments", "xray:PutTelemetryRecords"}

func statements(t *testing.T, tpl samtemplate.Template, fn string, params map[string]string) []samtemplate.Statement {
	t.Helper()
	role, err := tpl.RoleOf(fn)
	if err != nil {
		t.Fatal(err)
	}
	st, err := tpl.RoleStatements(role, tpl.SampleEnv(params, nil))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Each function has its own role, assumable by Lambda only, and no
// statement grants every action or every resource unless AWS requires it.
func TestRolesAreNarrow(t *testing.T) {
	tpl := load(t)
	seen := map[string]string{}
	for _, fn := range functions {
		role, err := tpl.RoleOf(fn)
		if err != nil {
			t.Fatal(err)
		}
		if other, dup := seen[role]; dup {
			t.Errorf("%s and %s share the role %s", fn, other, role)
		}
		seen[role] = fn
		trust := path(props(t, tpl, role), "AssumeRolePolicyDocument", "Statement").([]any)
		if len(trust) != 1 || path(trust[0], "Principal", "Service") != "lambda.amazonaws.com" {
			t.Errorf("%s: trust policy %v", role, trust)
		}
		for _, params := range variants() {
			for _, s := range statements(t, tpl, fn, params) {
				if s.Effect != "Allow" {
					continue
				}
				for _, a := range s.Actions {
					if strings.Contains(a, "*") {
						t.Errorf("%s %s: action %q has a wildcard", role, s.Sid, a)
					}
				}
				for _, r := range s.Resources {
					if r != "*" {
						continue
					}
					for _, a := range s.Actions {
						if !slices.Contains(starOnly, a) {
							t.Errorf("%s %s: %s on every resource", role, s.Sid, a)
						}
					}
				}
			}
		}
	}
}

// What each function may do, in the sample account: the calls the code
// makes (internal/runtimetest observes them) and nothing it does not.
func TestGrantsPerFunction(t *testing.T) {
	tpl := load(t)
	e := tpl.SampleEnv(nil, nil)
	arn := func(res, attr string) string { return e.Attrs[res+"."+attr] }
	table, bucket, stream := arn("Table", "Arn"), arn("SessionsBucket", "Arn"), arn("StreamFunction", "Arn")
	chatFn, key := arn("ChatFunction", "Arn"), arn("ProjectsKey", "Arn")
	obj := bucket + "/users/u1/conversations/c1/work.tar.gz"
	gitDir := bucket + "/users/u1/conversations/c1/git.tar.gz"
	cache := bucket + "/users/u1/projects/p1/cache.tar.gz"
	// The encryption context internal/project seals a token with.
	const purpose, tokens = "kms:EncryptionContext:purpose", "ovrlrd git token"
	type check struct {
		req  samtemplate.Request
		want map[string]bool // function -> allowed
	}
	all := map[string]bool{"AuthFunction": true, "ChatFunction": true, "StreamFunction": true}
	only := func(fns ...string) map[string]bool {
		m := map[string]bool{}
		for _, f := range fns {
			m[f] = true
		}
		return m
	}
	req := func(action, resource string, kv ...string) samtemplate.Request {
		r := samtemplate.Request{Action: action, Resource: resource, Context: map[string]string{}}
		for i := 0; i+1 < len(kv); i += 2 {
			r.Context[kv[i]] = kv[i+1]
		}
		return r
	}
	checks := []check{
		{req("dynamodb:GetItem", table), all},
		{req("dynamodb:PutItem", table), all},
		{req("dynamodb:UpdateItem", table), all},
		{req("dynamodb:DeleteItem", table), all},
		{req("dynamodb:Query", table), all},
		// A transaction is authorized item by item: Put, Update and Delete
		// above, and the account-open ConditionCheck every function's
		// transactions carry (internal/store accountOpen).
		{req("dynamodb:ConditionCheckItem", table), all},
		{req("dynamodb:DescribeTable", table), all},
		{req("dynamodb:BatchWriteItem", table), only("AuthFunction", "ChatFunction")},
		{req("dynamodb:Query", table+"/index/GSI1"), only("ChatFunction")},
		{req("dynamodb:Scan", table), nil},
		{req("dynamodb:DeleteTable", table), nil},
		{req("dynamodb:BatchGetItem", table), nil},
		{req("lambda:InvokeFunction", stream), only("ChatFunction")},
		{req("lambda:InvokeFunction", chatFn), only("ChatFunction")}, // finishing an account deletion
		// The stream function reads and writes conversations' folders and
		// git directories (turns, a conversation's changes and push) and
		// projects' caches; the chat function only deletes (a
		// conversation, an account).
		{req("s3:GetObject", obj), only("StreamFunction")},
		{req("s3:PutObject", obj), only("StreamFunction")},
		{req("s3:DeleteObject", obj), only("ChatFunction", "StreamFunction")},
		{req("s3:GetObject", gitDir), only("StreamFunction")},
		{req("s3:PutObject", gitDir), only("StreamFunction")},
		{req("s3:DeleteObject", gitDir), only("ChatFunction", "StreamFunction")},
		{req("s3:GetObject", cache), only("StreamFunction")},
		{req("s3:PutObject", cache), only("StreamFunction")},
		{req("s3:DeleteObject", cache), only("ChatFunction", "StreamFunction")},
		{req("s3:ListBucket", bucket, "s3:prefix", "users/u1/"), only("ChatFunction", "StreamFunction")},
		// A missing object is NoSuchKey only with a ListBucket that
		// carries no s3:prefix; the chat function reads no object.
		{req("s3:ListBucket", bucket, "s3:prefix", ""), only("StreamFunction")},
		{req("s3:ListBucket", bucket), only("StreamFunction")},
		// Projects' tokens: sealed (envelope encryption: GenerateDataKey,
		// never Encrypt) and opened by the stream function, which serves
		// the projects' routes and turns, with the tokens' purpose only,
		// under the stack's key only. The chat function uses no key.
		{req("kms:GenerateDataKey", key, purpose, tokens), only("StreamFunction")},
		{req("kms:Decrypt", key, purpose, tokens), only("StreamFunction")},
		{req("kms:GenerateDataKey", key), nil},
		{req("kms:Decrypt", key), nil},
		{req("kms:Decrypt", key, purpose, "something else"), nil},
		{req("kms:Decrypt", "arn:aws:kms:eu-west-1:"+samtemplate.SampleAccount+":key/other", purpose, tokens), nil},
		{req("kms:Encrypt", key, purpose, tokens), nil},
		{req("kms:ReEncryptFrom", key, purpose, tokens), nil},
		{req("kms:CreateGrant", key, purpose, tokens), nil},
		{req("kms:GenerateDataKeyWithoutPlaintext", key, purpose, tokens), nil},
		{req("s3:GetObject", bucket+"/other/key"), nil},
		{req("s3:DeleteBucket", bucket), nil},
		{req("bedrock:InvokeModel", "arn:aws:bedrock:eu-west-1::foundation-model/anthropic.claude-sonnet-4-20250514-v1:0"), nil},
	}
	for _, fn := range functions {
		st := statements(t, tpl, fn, map[string]string{"SsmPrefix": "/ovrlrd/dev"})
		for _, c := range checks {
			if got := samtemplate.Allows(st, c.req); got != c.want[fn] {
				t.Errorf("%s: %s allowed %v, want %v", fn, c.req, got, c.want[fn])
			}
		}
	}

	// Bedrock only for the stream function, and only with that provider.
	model := req("bedrock:InvokeModelWithResponseStream", "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-sonnet-4-20250514-v1:0")
	profile := req("bedrock:InvokeModel", "arn:aws:bedrock:eu-west-1:"+samtemplate.SampleAccount+":inference-profile/eu.anthropic.claude-sonnet-4-20250514-v1:0")
	other := req("bedrock:InvokeModel", "arn:aws:bedrock:eu-west-1::foundation-model/amazon.titan-text-express-v1")
	for _, provider := range []string{"anthropic", "oauth", "bedrock"} {
		for _, fn := range functions {
			st := statements(t, tpl, fn, map[string]string{"SsmPrefix": "/ovrlrd/dev", "ClaudeProvider": provider})
			want := fn == "StreamFunction" && provider == "bedrock"
			for _, r := range []samtemplate.Request{model, profile} {
				if got := samtemplate.Allows(st, r); got != want {
					t.Errorf("%s with %s: %s allowed %v, want %v", fn, provider, r, got, want)
				}
			}
			if samtemplate.Allows(st, other) {
				t.Errorf("%s with %s: a non-Claude model may be invoked", fn, provider)
			}
		}
	}
}

// recorder is a SecretSource that notes what it is asked for.
type recorder struct{ names []string }

func (r *recorder) Fetch(_ context.Context, names []string) (map[string]string, error) {
	r.names = append(r.names, names...)
	return map[string]string{}, nil
}

// Every SSM parameter the configuration of a function reads, with any
// provider, is granted to that function's role; and the role is granted no
// parameter the function never reads.
func TestSecretsGrantedExactly(t *testing.T) {
	tpl := load(t)
	const prefix = "/ovrlrd/prod"
	paramARN := "arn:aws:ssm:" + samtemplate.SampleRegion + ":" + samtemplate.SampleAccount + ":parameter" + prefix + "/"
	kinds := map[string]config.Function{"AuthFunction": config.Auth, "ChatFunction": config.Chat, "StreamFunction": config.Stream}
	for _, fn := range functions {
		read := map[string]bool{}
		for _, provider := range []string{"anthropic", "oauth", "bedrock"} {
			env := map[string]string{"STAGE": "prod", "SSM_PREFIX": prefix, "AWS_REGION": samtemplate.SampleRegion, "CLAUDE_PROVIDER": provider}
			rec := &recorder{}
			_, _ = config.LoadWith(context.Background(), kinds[fn], func(k string) string { return env[k] }, rec)
			if len(rec.names) == 0 {
				t.Fatalf("%s: the configuration read no secret", fn)
			}
			st := statements(t, tpl, fn, map[string]string{"SsmPrefix": prefix, "ClaudeProvider": provider})
			for _, n := range rec.names {
				read[n] = true
				r := samtemplate.Request{Action: "ssm:GetParameters", Resource: paramARN + n}
				if !samtemplate.Allows(st, r) {
					t.Errorf("%s (%s) reads %s%s/%s, which its role does not grant", fn, provider, "", prefix, n)
				}
			}
		}
		var granted []string
		for _, s := range statements(t, tpl, fn, map[string]string{"SsmPrefix": prefix}) {
			if !slices.Contains(s.Actions, "ssm:GetParameters") {
				continue
			}
			for _, r := range s.Resources {
				name, ok := strings.CutPrefix(r, paramARN)
				if !ok || strings.ContainsAny(name, "*?") {
					t.Errorf("%s: ssm:GetParameters on %s, want exact parameters under the prefix", fn, r)
					continue
				}
				granted = append(granted, name)
				if !read[name] {
					t.Errorf("%s: granted %s/%s, which it never reads", fn, prefix, name)
				}
			}
		}
		sort.Strings(granted)
		t.Logf("%s reads %v", fn, granted)
	}
}

// Every action the templates name is one IAM knows (a wildcard matches at
// least one): IAM accepts any name in a policy, and a name it does not know
// grants nothing, while the checks here would take it at its word. The
// roles as each variant evaluates them, then every policy of every
// resource, in every branch, here and in the deploy template.
func TestPolicyActionsExist(t *testing.T) {
	tpl := load(t)
	check := func(where, action string) {
		t.Helper()
		known := samtemplate.ActionExists(action)
		if strings.ContainsAny(action, "*?") {
			known = samtemplate.ActionPatternMatches(action)
		}
		service, _, _ := strings.Cut(action, ":")
		switch {
		case !samtemplate.ActionPatternMatches(service + ":*"):
			t.Errorf("%s: %q: the service %s is not in iam-actions.txt; add it as its header says", where, action, service)
		case !known:
			t.Errorf("%s: %q is not an IAM action", where, action)
		}
	}
	for name, params := range variants() {
		for _, fn := range functions {
			for _, s := range statements(t, tpl, fn, params) {
				for _, a := range s.Actions {
					check(fn+" ("+name+") "+s.Sid, a)
				}
			}
		}
	}

	deploy, err := samtemplate.Load("../../../deploy/github-oidc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	templates := map[string]samtemplate.Template{"template.yaml": tpl, "deploy/github-oidc.yaml": deploy}
	for file, tp := range templates {
		actions, err := tp.PolicyActions()
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		holders := map[string]bool{}
		for _, a := range actions {
			holders[a.Resource] = true
			check(file+" "+a.Resource, a.Action)
		}
		// Each resource that is or holds a policy was read.
		for id, r := range tp.Resources() {
			switch r["Type"] {
			case "AWS::IAM::Role", "AWS::IAM::RolePolicy", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy",
				"AWS::S3::BucketPolicy", "AWS::SNS::TopicPolicy", "AWS::Lambda::Permission":
				if !holders[id] {
					t.Errorf("%s: no action found in %s", file, id)
				}
			}
		}
		t.Logf("%s: %d actions in %d resources", file, len(actions), len(holders))
	}
}

// A role's statements include those of the template's own managed
// policies it attaches; a managed policy the template does not hold (an
// AWS managed one, an ARN) cannot be read here, so it is refused.
func TestRoleStatementsReadManagedPolicies(t *testing.T) {
	doc := func(sid string) map[string]any {
		return map[string]any{"Statement": []any{map[string]any{"Sid": sid, "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}}}
	}
	role := func(managed any) samtemplate.Template {
		return samtemplate.Template{"Resources": map[string]any{
			"Own":   map[string]any{"Type": "AWS::IAM::ManagedPolicy", "Properties": map[string]any{"PolicyDocument": doc("Managed")}},
			"Other": map[string]any{"Type": "AWS::SNS::Topic"},
			"Role": map[string]any{"Type": "AWS::IAM::Role", "Properties": map[string]any{
				"Policies":          []any{map[string]any{"PolicyName": "inline", "PolicyDocument": doc("Inline")}},
				"ManagedPolicyArns": managed,
			}},
		}}
	}
	st, err := role([]any{map[string]any{"Ref": "Own"}}).RoleStatements("Role", samtemplate.Env{})
	if err != nil || len(st) != 2 || st[0].Sid != "Inline" || st[1].Sid != "Managed" {
		t.Errorf("statements %+v, %v; want the inline one and the managed one", st, err)
	}
	for _, managed := range []any{
		[]any{"arn:aws:iam::aws:policy/AdministratorAccess"},
		[]any{map[string]any{"Ref": "Other"}},
		[]any{map[string]any{"Ref": "Missing"}},
		"arn:aws:iam::aws:policy/AdministratorAccess",
	} {
		if st, err := role(managed).RoleStatements("Role", samtemplate.Env{}); err == nil {
			t.Errorf("ManagedPolicyArns %v: read as %+v, want an error", managed, st)
		}
	}
}
