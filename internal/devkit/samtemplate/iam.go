package samtemplate

import (
	"fmt"
	"sort"
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
// own and those of AWS::IAM::RolePolicy resources naming it (a policy that
// names the role's function must be one), as CloudFormation would create
// them in e (conditional policies included or dropped by their condition).
// Managed policies are refused: what a role may do must be readable here.
func (t Template) RoleStatements(role string, e Env) ([]Statement, error) {
	r := t.Resources()[role]
	raw, _ := r["Properties"].(map[string]any)
	if _, ok := raw["ManagedPolicyArns"]; ok {
		return nil, fmt.Errorf("%s: managed policies are not allowed", role)
	}
	v, err := t.Eval(raw["Policies"], e)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", role, err)
	}
	policies, _ := v.([]any)
	attached, err := t.rolePolicies(role, e)
	if err != nil {
		return nil, err
	}
	policies = append(policies, attached...)
	var out []Statement
	for _, p := range policies {
		pm, _ := p.(map[string]any)
		doc, _ := pm["PolicyDocument"].(map[string]any)
		stmts, _ := doc["Statement"].([]any)
		for _, s := range stmts {
			sm, _ := s.(map[string]any)
			st := Statement{
				Policy:    fmt.Sprint(pm["PolicyName"]),
				Sid:       str(sm["Sid"]),
				Effect:    str(sm["Effect"]),
				Actions:   strs(sm["Action"]),
				Resources: strs(sm["Resource"]),
			}
			if _, bad := sm["NotAction"]; bad {
				return nil, fmt.Errorf("%s: NotAction is not allowed", role)
			}
			if _, bad := sm["NotResource"]; bad {
				return nil, fmt.Errorf("%s: NotResource is not allowed", role)
			}
			st.Condition = conditionOf(sm)
			out = append(out, st)
		}
	}
	return out, nil
}

// rolePolicies returns the properties (PolicyName, PolicyDocument) of the
// AWS::IAM::RolePolicy resources that CloudFormation would attach to role
// in e.
func (t Template) rolePolicies(role string, e Env) ([]any, error) {
	var out []any
	for _, id := range t.ResourceIDs() {
		r := t.Resources()[id]
		if r["Type"] != "AWS::IAM::RolePolicy" {
			continue
		}
		on, err := t.Creates(id, e)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		if !on {
			continue
		}
		raw, _ := r["Properties"].(map[string]any)
		ref, _ := raw["RoleName"].(map[string]any)
		if ref["Ref"] != role {
			continue
		}
		v, err := t.Eval(raw, e)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// conditionOf returns a statement's Condition block, nil without one.
func conditionOf(sm map[string]any) map[string]map[string][]string {
	c, ok := sm["Condition"].(map[string]any)
	if !ok {
		return nil
	}
	out := map[string]map[string][]string{}
	for op, kv := range c {
		out[op] = map[string][]string{}
		m, _ := kv.(map[string]any)
		for k, vals := range m {
			out[op][k] = strs(vals)
		}
	}
	return out
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
		keys := make([]string, 0, len(r.Context))
		for k := range r.Context {
			keys = append(keys, k+"="+r.Context[k])
		}
		sort.Strings(keys)
		s += " (" + strings.Join(keys, ", ") + ")"
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
					ok = ok || Glob(v, got, false)
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
	for _, p := range patterns {
		if Glob(p, s, fold) {
			return true
		}
	}
	return false
}

// Glob matches IAM wildcards: '*' any run of characters, '?' exactly one
// (gateway.Glob); fold makes the match case-insensitive (actions are).
func Glob(pattern, s string, fold bool) bool {
	if fold {
		pattern, s = strings.ToLower(pattern), strings.ToLower(s)
	}
	return gateway.Glob(pattern, s)
}
