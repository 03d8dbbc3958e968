package samtemplate_test

import (
	"reflect"
	"sort"
	"testing"

	"github.com/ovrlrd/cloud/internal/devkit/dynamolocal"
	"github.com/ovrlrd/cloud/internal/devkit/gateway"
	"github.com/ovrlrd/cloud/internal/devkit/samtemplate"
)

func load(t *testing.T) samtemplate.Template {
	t.Helper()
	tpl, err := samtemplate.Load("../../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

func TestShortFormIntrinsics(t *testing.T) {
	tpl := load(t)
	env := tpl["Globals"].(map[string]any)["Function"].(map[string]any)["Environment"].(map[string]any)["Variables"].(map[string]any)
	if got := env["TABLE_NAME"]; !reflect.DeepEqual(got, map[string]any{"Ref": "Table"}) {
		t.Fatalf("!Ref decoded as %#v", got)
	}
	role := tpl.Resources()["AuthFunction"]["Properties"].(map[string]any)["Role"]
	if !reflect.DeepEqual(role, map[string]any{"Fn::GetAtt": []any{"AuthRole", "Arn"}}) {
		t.Fatalf("!GetAtt decoded as %#v", role)
	}
	cond := tpl["Conditions"].(map[string]any)["UseBedrock"]
	if !reflect.DeepEqual(cond, map[string]any{"Fn::Equals": []any{map[string]any{"Ref": "ClaudeProvider"}, "bedrock"}}) {
		t.Fatalf("!Equals decoded as %#v", cond)
	}
}

// The table in the template must be the table the code creates locally.
func TestTableMatchesDefinition(t *testing.T) {
	def := dynamolocal.Definition()
	props := load(t).Resources()["Table"]["Properties"].(map[string]any)

	attrs := map[string]string{}
	for _, a := range props["AttributeDefinitions"].([]any) {
		m := a.(map[string]any)
		attrs[m["AttributeName"].(string)] = m["AttributeType"].(string)
	}
	if !reflect.DeepEqual(attrs, def.Attributes) {
		t.Errorf("attributes: template %v, code %v", attrs, def.Attributes)
	}
	hash, rng := keySchema(props["KeySchema"])
	if hash != def.HashKey || rng != def.RangeKey {
		t.Errorf("key schema: template (%s,%s), code (%s,%s)", hash, rng, def.HashKey, def.RangeKey)
	}

	var got []dynamolocal.IndexDef
	for _, g := range props["GlobalSecondaryIndexes"].([]any) {
		m := g.(map[string]any)
		h, r := keySchema(m["KeySchema"])
		got = append(got, dynamolocal.IndexDef{
			Name: m["IndexName"].(string), HashKey: h, RangeKey: r,
			Projection: m["Projection"].(map[string]any)["ProjectionType"].(string),
		})
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Name < got[j].Name })
	want := append([]dynamolocal.IndexDef(nil), def.Indexes...)
	sort.Slice(want, func(i, j int) bool { return want[i].Name < want[j].Name })
	if !reflect.DeepEqual(got, want) {
		t.Errorf("indexes: template %+v, code %+v", got, want)
	}

	ttl := props["TimeToLiveSpecification"].(map[string]any)
	if ttl["AttributeName"] != def.TTLAttribute || ttl["Enabled"] != true {
		t.Errorf("ttl: template %v, code %q", ttl, def.TTLAttribute)
	}
}

func keySchema(v any) (hash, rng string) {
	for _, k := range v.([]any) {
		m := k.(map[string]any)
		switch m["KeyType"] {
		case "HASH":
			hash = m["AttributeName"].(string)
		case "RANGE":
			rng = m["AttributeName"].(string)
		}
	}
	return hash, rng
}

// The local gateway must route exactly as the deployed HTTP API does.
func TestRoutesMatchGateway(t *testing.T) {
	logical := map[gateway.Function]string{gateway.Auth: "AuthFunction", gateway.Chat: "ChatFunction", gateway.Stream: "StreamFunction"}
	res := load(t).Resources()
	got := map[string]string{}
	for name, r := range res {
		if r["Type"] != "AWS::Serverless::Function" {
			continue
		}
		props := r["Properties"].(map[string]any)
		evs, _ := props["Events"].(map[string]any)
		for _, e := range evs {
			em := e.(map[string]any)
			if em["Type"] != "HttpApi" {
				continue
			}
			p := em["Properties"].(map[string]any)
			key := p["Method"].(string) + " " + p["Path"].(string)
			if p["Path"] == "$default" {
				key = "$default"
			}
			if prev, dup := got[key]; dup {
				t.Errorf("route %q declared by %s and %s", key, prev, name)
			}
			got[key] = name
		}
	}
	want := map[string]string{}
	for _, r := range gateway.HTTPAPIRoutes {
		want[r.Key] = logical[r.Function]
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("HTTP API routes:\ntemplate %v\ngateway  %v", got, want)
	}
}
