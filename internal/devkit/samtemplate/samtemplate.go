// Package samtemplate reads template.yaml the way CloudFormation does, with
// the short-form intrinsic functions (!Ref, !Sub, !GetAtt, ...) turned into
// their long JSON form, so tests can check the template offline.
package samtemplate

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Template is a decoded template: maps, slices and scalars, as from JSON.
type Template map[string]any

// Load reads and decodes the template at path.
func Load(path string) (Template, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var root yaml.Node
	// A map[string]any, not a Template: yaml decodes nested mappings into
	// the type of the outermost.
	var m map[string]any
	if err = yaml.Unmarshal(b, &root); err == nil {
		longForm(&root)
		err = root.Decode(&m)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Resources returns the Resources section.
func (t Template) Resources() map[string]map[string]any { return t.section("Resources") }

// Parameters returns the Parameters section.
func (t Template) Parameters() map[string]map[string]any { return t.section("Parameters") }

// ResourceIDs returns the logical ids of the template's resources, sorted,
// so that whatever walks them reports in the same order on every run.
func (t Template) ResourceIDs() []string { return slices.Sorted(maps.Keys(t.Resources())) }

func (t Template) section(name string) map[string]map[string]any {
	out := map[string]map[string]any{}
	entries, _ := t[name].(map[string]any)
	for k, v := range entries {
		out[k], _ = v.(map[string]any)
	}
	return out
}

// at walks nested mappings by key; a missing key, or a value on the way
// that is not a mapping, gives nil.
func at(v any, keys ...string) any {
	for _, k := range keys {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

// longForm rewrites each short-form node (!Sub x) in place into its long
// form ({"Fn::Sub": x}); the argument of a short form is never a tagged
// YAML type, so a scalar stays a string.
func longForm(n *yaml.Node) {
	for _, c := range n.Content {
		longForm(c)
	}
	name, ok := strings.CutPrefix(n.Tag, "!")
	if !ok || strings.HasPrefix(name, "!") {
		return
	}
	arg := *n
	arg.Tag = ""
	if n.Kind == yaml.ScalarNode {
		arg.Tag = "!!str"
		if name == "GetAtt" {
			resource, attr, _ := strings.Cut(n.Value, ".")
			arg = yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{strNode(resource), strNode(attr)}}
		}
	}
	if name != "Ref" && name != "Condition" {
		name = "Fn::" + name
	}
	*n = yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{strNode(name), &arg}}
}

func strNode(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

// Creates reports whether CloudFormation creates resource id in e: one
// with a Condition only where the condition holds.
func (t Template) Creates(id string, e Env) (bool, error) {
	if cond, ok := t.Resources()[id]["Condition"].(string); ok {
		return t.condition(cond, e)
	}
	return true, nil
}

// FunctionVariables returns a function's Environment.Variables with those
// of Globals.Function under them, as SAM merges them, unevaluated.
func (t Template) FunctionVariables(function string) (map[string]any, error) {
	r, ok := t.Resources()[function]
	if !ok {
		return nil, fmt.Errorf("no resource %s", function)
	}
	vars := map[string]any{}
	for _, scope := range []any{at(map[string]any(t), "Globals", "Function"), r["Properties"]} {
		declared, _ := at(scope, "Environment", "Variables").(map[string]any)
		maps.Copy(vars, declared)
	}
	return vars, nil
}
