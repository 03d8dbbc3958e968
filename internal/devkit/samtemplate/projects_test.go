package samtemplate_test

import (
	"fmt"
	"go/ast"
	"go/token"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/devkit/samtemplate"
)

// sealPurpose returns the purpose internal/project binds each sealed token
// to: the value of every "purpose" key of a map literal in its code.
func sealPurpose(t *testing.T) string {
	t.Helper()
	seen := map[string]bool{}
	inspectSources(t, "../../project/*.go", func(n ast.Node) bool {
		kv, ok := n.(*ast.KeyValueExpr)
		if !ok {
			return true
		}
		k, kok := kv.Key.(*ast.BasicLit)
		if !kok || k.Kind != token.STRING || k.Value != `"purpose"` {
			return true
		}
		v := kv.Value
		// A constant of the file stands for its value.
		if id, ok := v.(*ast.Ident); ok && id.Obj != nil {
			if spec, ok := id.Obj.Decl.(*ast.ValueSpec); ok {
				for i, name := range spec.Names {
					if name.Name == id.Name && i < len(spec.Values) {
						v = spec.Values[i]
					}
				}
			}
		}
		if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			s, _ := strconv.Unquote(lit.Value)
			seen[s] = true
		} else {
			seen["(not a string literal: "+fmt.Sprintf("%T", v)+")"] = true
		}
		return true
	})
	if len(seen) != 1 {
		t.Fatalf("internal/project names %d purposes of its encryption context as literals (%v), want one", len(seen), sortedKeys(seen))
	}
	return sortedKeys(seen)[0]
}

// The projects' key is a symmetric key that rotates, outlives the stack
// and any replacement, and whose policy names the account alone; its alias
// is the stack's name, and the stream function alone is told its ARN.
func TestProjectsKey(t *testing.T) {
	tpl := load(t)
	r := tpl.Resources()["ProjectsKey"]
	if r["Type"] != "AWS::KMS::Key" {
		t.Fatalf("ProjectsKey is %v, want an AWS::KMS::Key", r["Type"])
	}
	if r["DeletionPolicy"] != "Retain" || r["UpdateReplacePolicy"] != "Retain" || r["Condition"] != nil {
		t.Errorf("ProjectsKey policies %v/%v, condition %v: want Retain/Retain, always created (losing it loses every sealed token)",
			r["DeletionPolicy"], r["UpdateReplacePolicy"], r["Condition"])
	}
	p := props(t, tpl, "ProjectsKey")
	if p["EnableKeyRotation"] != true || p["MultiRegion"] == true || p["BypassPolicyLockoutSafetyCheck"] == true {
		t.Errorf("ProjectsKey: rotation %v, multi-Region %v, lockout check bypassed %v", p["EnableKeyRotation"], p["MultiRegion"], p["BypassPolicyLockoutSafetyCheck"])
	}
	for k, want := range map[string]string{"KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT"} {
		if v, ok := p[k]; ok && v != want {
			t.Errorf("ProjectsKey %s %v, want %s", k, v, want)
		}
	}
	if n := intOf(t, p["PendingWindowInDays"]); n < 30 {
		t.Errorf("PendingWindowInDays %d: want the longest window, 30", n)
	}

	// The default key policy: the account's root, through which IAM
	// policies grant the key's use, and no other principal.
	e := tpl.SampleEnv(map[string]string{"SsmPrefix": "/ovrlrd/prod"}, nil)
	policy, err := tpl.Eval(p["KeyPolicy"], e)
	if err != nil {
		t.Fatal(err)
	}
	list, _ := path(policy, "Statement").([]any)
	root := map[string]any{"AWS": "arn:aws:iam::" + samtemplate.SampleAccount + ":root"}
	for _, s := range list {
		m, _ := s.(map[string]any)
		if m["Effect"] == "Allow" && !reflect.DeepEqual(m["Principal"], root) {
			t.Errorf("key policy %v: allows %v, want the account's root only", m["Sid"], m["Principal"])
		}
		for _, k := range []string{"NotPrincipal", "NotAction", "NotResource"} {
			if _, bad := m[k]; bad {
				t.Errorf("key policy %v: %s", m["Sid"], k)
			}
		}
	}
	if len(list) != 1 || path(list[0], "Effect") != "Allow" {
		t.Errorf("key policy: %d statements, want the account's one", len(list))
	}

	// The alias config's tests use: alias/<stack>-projects.
	aliases := 0
	for _, id := range tpl.ResourceIDs() {
		if tpl.Resources()[id]["Type"] != "AWS::KMS::Alias" {
			continue
		}
		aliases++
		ae := tpl.SampleEnv(map[string]string{"SsmPrefix": "/ovrlrd/prod"}, nil)
		ae.Params["AWS::StackName"] = "ovrlrd-prod"
		a, err := tpl.Eval(props(t, tpl, id), ae)
		if err != nil {
			t.Fatal(err)
		}
		if path(a, "AliasName") != "alias/ovrlrd-prod-projects" || !reflect.DeepEqual(path(props(t, tpl, id), "TargetKeyId"), map[string]any{"Ref": "ProjectsKey"}) {
			t.Errorf("%s: %v, want alias/<stack>-projects for ProjectsKey", id, a)
		}
	}
	if aliases != 1 {
		t.Errorf("%d KMS aliases, want one", aliases)
	}

	keyARN := map[string]any{"Fn::GetAtt": []any{"ProjectsKey", "Arn"}}
	for _, fn := range functions {
		v, set := functionEnv(t, tpl, fn)["KMS_KEY_ID"]
		if want := fn == "StreamFunction"; set != want || (set && !reflect.DeepEqual(v, keyARN)) {
			t.Errorf("%s: KMS_KEY_ID %v (set %v), want the key's ARN for the stream function only", fn, v, set)
		}
	}
}

// Every KMS grant of the functions' roles is on the projects' key alone,
// for the purpose internal/project seals tokens with; the deploy role
// manages the key but can neither use it nor delete it.
func TestProjectsKeyGrants(t *testing.T) {
	tpl := load(t)
	purpose := sealPurpose(t)
	e := tpl.SampleEnv(nil, nil)
	key := e.Attrs["ProjectsKey.Arn"]
	kms := map[string][]string{}
	for _, fn := range functions {
		for _, params := range variants() {
			for _, s := range statements(t, tpl, fn, params) {
				var acts []string
				for _, a := range s.Actions {
					if strings.HasPrefix(strings.ToLower(a), "kms:") {
						acts = append(acts, a)
					}
				}
				if len(acts) == 0 {
					continue
				}
				kms[fn] = slices.Compact(slices.Sorted(slices.Values(append(kms[fn], acts...))))
				if len(acts) != len(s.Actions) {
					t.Errorf("%s %s: KMS and other actions in one statement", fn, s.Sid)
				}
				env := tpl.SampleEnv(params, nil)
				if len(s.Resources) != 1 || s.Resources[0] != env.Attrs["ProjectsKey.Arn"] {
					t.Errorf("%s %s: %v on %v, want the projects' key only", fn, s.Sid, acts, s.Resources)
				}
				want := map[string]map[string][]string{"StringEquals": {"kms:EncryptionContext:purpose": {purpose}}}
				if !reflect.DeepEqual(s.Condition, want) {
					t.Errorf("%s %s: condition %v, want %v", fn, s.Sid, s.Condition, want)
				}
			}
		}
	}
	// The stream function serves the projects' routes (it seals tokens)
	// and turns (they open them); the chat and auth functions use no key.
	want := map[string][]string{"StreamFunction": {"kms:Decrypt", "kms:GenerateDataKey"}}
	if !reflect.DeepEqual(kms, want) {
		t.Errorf("KMS actions per function %v, want %v", kms, want)
	}

	st := deployStatements(t, loadDeploy(t), deployVariants()["new provider"])
	for _, a := range []string{
		"kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt", "kms:ReEncryptFrom", "kms:CreateGrant",
		"kms:ScheduleKeyDeletion", "kms:DisableKeyRotation", "kms:DisableKey",
	} {
		r := samtemplate.Request{Action: a, Resource: key, Context: map[string]string{"kms:EncryptionContext:purpose": purpose}}
		if samtemplate.Allows(st, r) {
			t.Errorf("the deploy role may %s", r)
		}
	}
}
