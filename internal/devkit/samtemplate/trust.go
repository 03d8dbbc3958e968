package samtemplate

import (
	"fmt"
	"sort"
)

// TrustStatements returns a role's trust policy (AssumeRolePolicyDocument)
// as CloudFormation would create it in e, in the form Allows evaluates: a
// statement's principals stand where an identity policy has its resources,
// so a Request's Resource is the principal asking to assume the role (an
// identity provider's ARN, a service, an account) and its Context carries
// the token's claims (token.actions.githubusercontent.com:sub, ...).
func (t Template) TrustStatements(role string, e Env) ([]Statement, error) {
	r, ok := t.Resources()[role]
	if !ok || r["Type"] != "AWS::IAM::Role" {
		return nil, fmt.Errorf("%s is not an AWS::IAM::Role", role)
	}
	raw, _ := r["Properties"].(map[string]any)
	v, err := t.Eval(raw["AssumeRolePolicyDocument"], e)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", role, err)
	}
	doc, _ := v.(map[string]any)
	stmts, _ := doc["Statement"].([]any)
	var out []Statement
	for _, s := range stmts {
		sm, _ := s.(map[string]any)
		for _, k := range []string{"NotAction", "NotPrincipal", "Resource"} {
			if _, bad := sm[k]; bad {
				return nil, fmt.Errorf("%s: %s is not allowed in a trust policy", role, k)
			}
		}
		st := Statement{Sid: str(sm["Sid"]), Effect: str(sm["Effect"]), Actions: strs(sm["Action"])}
		switch p := sm["Principal"].(type) {
		case string:
			st.Resources = []string{p}
		case map[string]any:
			kinds := make([]string, 0, len(p))
			for kind := range p {
				kinds = append(kinds, kind)
			}
			sort.Strings(kinds)
			for _, kind := range kinds {
				st.Resources = append(st.Resources, strs(p[kind])...)
			}
		default:
			return nil, fmt.Errorf("%s: statement without a principal", role)
		}
		st.Condition = conditionOf(sm)
		out = append(out, st)
	}
	return out, nil
}
