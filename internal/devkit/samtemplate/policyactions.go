package samtemplate

import "fmt"

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
		add := func(v any) error {
			names, err := literalActions(v)
			if err != nil {
				return fmt.Errorf("%s: %w", id, err)
			}
			for _, n := range names {
				out = append(out, PolicyAction{Resource: id, Action: n})
			}
			return nil
		}
		props, _ := r["Properties"].(map[string]any)
		if r["Type"] == "AWS::Lambda::Permission" {
			if err := add(props["Action"]); err != nil {
				return nil, err
			}
		}
		if err := findStatements(props, add); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// findStatements hands the Action and NotAction of each statement under a
// Statement key anywhere in v to add.
func findStatements(v any, add func(any) error) error {
	switch x := v.(type) {
	case []any:
		for _, item := range x {
			if err := findStatements(item, add); err != nil {
				return err
			}
		}
	case map[string]any:
		for k, item := range x {
			var err error
			if k == "Statement" {
				err = eachStatement(item, add)
			} else {
				err = findStatements(item, add)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func eachStatement(v any, add func(any) error) error {
	switch x := v.(type) {
	case []any:
		for _, item := range x {
			if err := eachStatement(item, add); err != nil {
				return err
			}
		}
	case map[string]any:
		if branches, ok := ifBranches(x); ok {
			return eachStatement(branches, add)
		}
		for _, k := range []string{"Action", "NotAction"} {
			if a, ok := x[k]; ok {
				if err := add(a); err != nil {
					return err
				}
			}
		}
	}
	return nil
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
