package samtemplate

// What only this package's tests ask of a template.

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ovrlrd/cloud/internal/devkit/gateway"
)

// TrustStatements returns a role's trust policy (AssumeRolePolicyDocument)
// as CloudFormation would create it in e, in the form Allows evaluates: a
// statement's principals stand where an identity policy has its resources,
// so a Request's Resource is the principal asking to assume the role (an
// identity provider's ARN, a service, an account) and its Context carries
// the token's claims (token.actions.githubusercontent.com:sub, ...).
func (t Template) TrustStatements(role string, e Env) ([]Statement, error) {
	r := t.Resources()[role]
	if r["Type"] != "AWS::IAM::Role" {
		return nil, fmt.Errorf("%s is not an AWS::IAM::Role", role)
	}
	raw, _ := r["Properties"].(map[string]any)
	doc, err := t.Eval(raw["AssumeRolePolicyDocument"], e)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", role, err)
	}
	// Where an identity policy has its resources, the principals.
	list, _ := at(doc, "Statement").([]any)
	for _, s := range list {
		sm, _ := s.(map[string]any)
		var principals []any
		switch p := sm["Principal"].(type) {
		case string:
			principals = []any{p}
		case map[string]any:
			for _, kind := range slices.Sorted(maps.Keys(p)) {
				for _, principal := range strs(p[kind]) {
					principals = append(principals, principal)
				}
			}
		default:
			return nil, fmt.Errorf("%s: statement without a principal", role)
		}
		if _, ok := sm["Resource"]; ok {
			return nil, fmt.Errorf("%s: trust policy: Resource is not allowed", role)
		}
		sm["Resource"] = principals
	}
	st, err := statements(doc, "NotAction", "NotPrincipal")
	if err != nil {
		return nil, fmt.Errorf("%s: trust policy: %w", role, err)
	}
	return st, nil
}

// ActionPatternMatches reports whether an action pattern with IAM wildcards
// ('*', '?') matches at least one known action.
func ActionPatternMatches(pattern string) bool {
	for line := range strings.Lines(knownActions) {
		a := strings.TrimSpace(line)
		if !strings.HasPrefix(a, "#") && gateway.Glob(strings.ToLower(pattern), a) {
			return true
		}
	}
	return false
}

// PolicyAction is one action a policy in the template names.
type PolicyAction struct {
	Resource string // the logical id of the resource holding the policy
	Action   string
}

// PolicyActions returns every Action and NotAction of every policy
// statement the resources hold (identity, trust, bucket and other resource
// policies, at any depth of their properties) and the Action of each
// AWS::Lambda::Permission. Both branches of every Fn::If count, so no
// parameter value can bring in an action missing here; an action that is
// computed some other way is an error, as it could not be checked.
func (t Template) PolicyActions() ([]PolicyAction, error) {
	var out []PolicyAction
	for _, id := range t.ResourceIDs() {
		r := t.Resources()[id]
		props, _ := r["Properties"].(map[string]any)
		values := statementActions(props, false)
		if r["Type"] == "AWS::Lambda::Permission" {
			values = append(values, props["Action"])
		}
		for _, v := range values {
			names, err := literalActions(v)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", id, err)
			}
			for _, n := range names {
				out = append(out, PolicyAction{Resource: id, Action: n})
			}
		}
	}
	return out, nil
}

// statementActions returns the Action and NotAction of each statement
// under a Statement key anywhere in v; inStatement says v is (a list of, or
// an Fn::If between) statements.
func statementActions(v any, inStatement bool) []any {
	var out []any
	switch x := v.(type) {
	case []any:
		for _, item := range x {
			out = append(out, statementActions(item, inStatement)...)
		}
	case map[string]any:
		if branches, ok := ifBranches(x); ok && inStatement {
			return statementActions(branches, true)
		}
		for k, item := range x {
			switch {
			case !inStatement:
				out = append(out, statementActions(item, k == "Statement")...)
			case k == "Action" || k == "NotAction":
				out = append(out, item)
			}
		}
	}
	return out
}

// literalActions returns the action names v lists, in every branch of its
// Fn::If.
func literalActions(v any) ([]string, error) {
	switch x := v.(type) {
	case string:
		return []string{x}, nil
	case []any:
		var out []string
		for _, item := range x {
			names, err := literalActions(item)
			if err != nil {
				return nil, err
			}
			out = append(out, names...)
		}
		return out, nil
	case map[string]any:
		if branches, ok := ifBranches(x); ok {
			return literalActions(branches)
		}
		if len(x) == 1 && x["Ref"] == "AWS::NoValue" {
			return nil, nil
		}
	}
	return nil, fmt.Errorf("action %v is not a literal name", v)
}

// ifBranches returns the two values of an Fn::If.
func ifBranches(m map[string]any) ([]any, bool) {
	args, ok := m["Fn::If"].([]any)
	if len(m) != 1 || !ok || len(args) != 3 {
		return nil, false
	}
	return args[1:], true
}
