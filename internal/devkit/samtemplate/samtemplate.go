// Package samtemplate reads template.yaml the way CloudFormation does, with
// the short-form intrinsic functions (!Ref, !Sub, !GetAtt, ...) turned into
// their long JSON form, so tests can check the template offline.
package samtemplate

import (
	"fmt"
	"os"
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
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(root.Content) == 0 {
		return nil, fmt.Errorf("%s: empty document", path)
	}
	longForm(&root)
	// A map[string]any, not a Template: yaml decodes nested mappings into
	// the type of the outermost.
	var m map[string]any
	if err := root.Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return Template(m), nil
}

// Resources returns the Resources section.
func (t Template) Resources() map[string]map[string]any { return t.section("Resources") }

// Parameters returns the Parameters section.
func (t Template) Parameters() map[string]map[string]any { return t.section("Parameters") }

// section returns the entries of a top-level section that are mappings.
func (t Template) section(name string) map[string]map[string]any {
	out := map[string]map[string]any{}
	entries, _ := t[name].(map[string]any)
	for k, v := range entries {
		if m, ok := v.(map[string]any); ok {
			out[k] = m
		}
	}
	return out
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
