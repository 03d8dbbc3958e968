package samtemplate_test

import (
	"testing"

	"github.com/ovrlrd/cloud/internal/devkit/samtemplate"
)

// A resource with a Condition exists only where the condition holds, and
// an unknown condition is an error rather than a resource taken as made:
// the role checks would otherwise count policies CloudFormation never
// attaches.
func TestCreatesFollowsTheResourceCondition(t *testing.T) {
	tpl := samtemplate.Template{
		"Parameters": map[string]any{"AlarmEmail": map[string]any{"Type": "String", "Default": ""}},
		"Conditions": map[string]any{
			"HasAlarmEmail": map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{map[string]any{"Ref": "AlarmEmail"}, ""}}}},
		},
		"Resources": map[string]any{
			"Table":   map[string]any{"Type": "AWS::DynamoDB::Table"},
			"Topic":   map[string]any{"Type": "AWS::SNS::Topic", "Condition": "HasAlarmEmail"},
			"Dangler": map[string]any{"Type": "AWS::SNS::Topic", "Condition": "NoSuchCondition"},
		},
	}
	for _, c := range []struct {
		id, email string
		want      bool
	}{
		{"Table", "", true},
		{"Topic", "", false},
		{"Topic", "ops@example.com", true},
	} {
		got, err := tpl.Creates(c.id, samtemplate.Env{Params: map[string]string{"AlarmEmail": c.email}})
		if err != nil || got != c.want {
			t.Errorf("Creates(%s) with AlarmEmail %q = %v, %v; want %v", c.id, c.email, got, err, c.want)
		}
	}
	if _, err := tpl.Creates("Dangler", samtemplate.Env{}); err == nil {
		t.Error("Creates(Dangler): no error for an undefined condition")
	}
}
