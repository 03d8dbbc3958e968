package samtemplate

import (
	"fmt"
	"maps"
	"slices"
)

// ResourceIDs returns the logical ids of the template's resources, sorted,
// so that whatever walks them reports in the same order on every run.
func (t Template) ResourceIDs() []string {
	return slices.Sorted(maps.Keys(t.Resources()))
}

// Creates reports whether CloudFormation creates resource id in e: one
// with a Condition only where the condition holds.
func (t Template) Creates(id string, e Env) (bool, error) {
	cond, ok := t.Resources()[id]["Condition"].(string)
	if !ok {
		return true, nil
	}
	return t.Condition(cond, e)
}

// FunctionVariables returns a function's Environment.Variables with those
// of Globals.Function under them, as SAM merges them, unevaluated.
func (t Template) FunctionVariables(function string) (map[string]any, error) {
	r, ok := t.Resources()[function]
	if !ok {
		return nil, fmt.Errorf("no resource %s", function)
	}
	vars := map[string]any{}
	globals, _ := t["Globals"].(map[string]any)
	shared, _ := globals["Function"].(map[string]any)
	props, _ := r["Properties"].(map[string]any)
	for _, scope := range []map[string]any{shared, props} {
		env, _ := scope["Environment"].(map[string]any)
		declared, _ := env["Variables"].(map[string]any)
		maps.Copy(vars, declared)
	}
	return vars, nil
}
