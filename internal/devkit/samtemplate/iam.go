package samtemplate

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ovrlrd/cloud/internal/devkit/gateway"
)

// Statement is one IAM policy statement with its intrinsics resolved.
type Statement struct {
	Policy    string // the inline policy's name
	Sid       string
	Effect    string
	Actions   []string
	Resources []string
	// Condition maps an operator (StringLike, Bool, ...) to keys and their
	// accepted values.
	Condition map[string]map[string][]string
}

// RoleOf returns the logical id of the IAM role a function runs with: its
// Role property must be !GetAtt <Role>.Arn of a role in the template.
func (t Template) RoleOf(function string) (string, error) {
	fn, ok := t.Resources()[function]
	if !ok {
		return "", fmt.Errorf("no resource %s", function)
	}
	props, _ := fn["Properties"].(map[string]any)
	role, _ := props["Role"].(map[string]any)
	ga, _ := role["Fn::GetAtt"].([]any)
	if len(ga) != 2 || ga[1] != "Arn" {
		return "", fmt.Errorf("%s: Role is %v, want !GetAtt <Role>.Arn", function, props["Role"])
	}
	name, _ := ga[0].(string)
	if r := t.Resources()[name]; r["Type"] != "AWS::IAM::Role" {
		return "", fmt.Errorf("%s: %s is not an AWS::IAM::Role", function, name)
	}
	return name, nil
}

// RoleStatements returns the statements of a role's inline policies, its
// own and those of AWS::IAM::RolePolicy resources naming it, as
// CloudFormation would create them in e (conditional policies included or
// dropped by their condition). Managed policies are refused: what a role
// may do must be readable here.
func (t Template) RoleStatements(role string, e Env) ([]Statement, error) {
	raw, _ := t.Resources()[role]["Properties"].(map[string]any)
	if _, ok := raw["ManagedPolicyArns"]; ok {
		return nil, fmt.Errorf("%s: managed policies are not allowed", role)
	}
	v, err := t.Eval(raw["Policies"], e)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", role, err)
	}
	policies, _ := v.([]any)
	for _, id := range t.ResourceIDs() {
		r := t.Resources()[id]
		if r["Type"] != "AWS::IAM::RolePolicy" {
			continue
		}
		on, err := t.Creates(id, e)
		props, _ := r["Properties"].(map[string]any)
		ref, _ := props["RoleName"].(map[string]any)
		if err == nil && on && ref["Ref"] == role {
			if v, err = t.Eval(props, e); err == nil {
				policies = append(policies, v)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
	}
	var out []Statement
	for _, p := range policies {
		pm, _ := p.(map[string]any)
		stmts, err := statementMaps(pm["PolicyDocument"], "NotAction", "NotResource")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", role, err)
		}
		for _, sm := range stmts {
			st := statement(sm, strs(sm["Resource"]))
			st.Policy = fmt.Sprint(pm["PolicyName"])
			out = append(out, st)
		}
	}
	return out, nil
}

// statementMaps returns the statements of a policy document, refusing
// those with a key the evaluation here does not model.
func statementMaps(doc any, refused ...string) ([]map[string]any, error) {
	d, _ := doc.(map[string]any)
	list, _ := d["Statement"].([]any)
	out := make([]map[string]any, len(list))
	for i, s := range list {
		out[i], _ = s.(map[string]any)
		for _, k := range refused {
			if _, bad := out[i][k]; bad {
				return nil, fmt.Errorf("%s is not allowed", k)
			}
		}
	}
	return out, nil
}

func statement(sm map[string]any, resources []string) Statement {
	st := Statement{Sid: str(sm["Sid"]), Effect: str(sm["Effect"]), Actions: strs(sm["Action"]), Resources: resources}
	c, _ := sm["Condition"].(map[string]any)
	for op, kv := range c {
		if st.Condition == nil {
			st.Condition = map[string]map[string][]string{}
		}
		st.Condition[op] = map[string][]string{}
		m, _ := kv.(map[string]any)
		for k, vals := range m {
			st.Condition[op][k] = strs(vals)
		}
	}
	return st
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func strs(v any) []string {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		out := make([]string, len(x))
		for i, e := range x {
			out[i] = fmt.Sprint(e)
		}
		return out
	}
	return []string{fmt.Sprint(v)}
}

// Request is one call as IAM sees it: an action on a resource ARN, with the
// request's condition keys (s3:prefix, ...).
type Request struct {
	Action   string
	Resource string
	Context  map[string]string
}

func (r Request) String() string {
	s := r.Action + " on " + r.Resource
	if len(r.Context) > 0 {
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(r.Context)) {
			kv = append(kv, k+"="+r.Context[k])
		}
		s += " (" + strings.Join(kv, ", ") + ")"
	}
	return s
}

// Allows evaluates identity-policy statements as IAM does: an explicit Deny
// wins, then any Allow; nothing matching means denied. Conditions support
// StringEquals, StringLike, ArnLike and Bool; any other operator never
// matches, so the check fails closed.
func Allows(stmts []Statement, r Request) bool {
	allowed := false
	for _, s := range stmts {
		if !s.matches(r) {
			continue
		}
		if s.Effect == "Deny" {
			return false
		}
		if s.Effect == "Allow" {
			allowed = true
		}
	}
	return allowed
}

func (s Statement) matches(r Request) bool {
	if !anyMatch(s.Actions, r.Action, true) || !anyMatch(s.Resources, r.Resource, false) {
		return false
	}
	for op, keys := range s.Condition {
		for k, vals := range keys {
			got, present := r.Context[k]
			if !present {
				return false
			}
			ok := false
			for _, v := range vals {
				switch op {
				case "StringEquals":
					ok = ok || got == v
				case "StringLike", "ArnLike":
					ok = ok || glob(v, got, false)
				case "Bool":
					ok = ok || strings.EqualFold(got, v)
				}
			}
			if !ok {
				return false
			}
		}
	}
	return true
}

func anyMatch(patterns []string, s string, fold bool) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return glob(p, s, fold) })
}

// glob matches IAM wildcards: '*' any run of characters, '?' exactly one;
// fold makes the match case-insensitive (actions are).
func glob(pattern, s string, fold bool) bool {
	if fold {
		pattern, s = strings.ToLower(pattern), strings.ToLower(s)
	}
	return gateway.Glob(pattern, s)
}
