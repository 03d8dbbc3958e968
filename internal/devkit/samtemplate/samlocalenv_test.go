package samtemplate_test

import (
	"maps"
	"testing"

	"github.com/ovrlrd/cloud/internal/devkit/devenv"
	"github.com/ovrlrd/cloud/internal/devkit/samtemplate"
)

// SAMLocalEnv resolves a template the way sam local does without a stack,
// gives the image's ENV to a container-image function only, and passes
// env.json's values for declared variables only.
func TestSAMLocalEnvResolvesAsSAMDoes(t *testing.T) {
	variables := func(vars map[string]any) map[string]any {
		return map[string]any{"Environment": map[string]any{"Variables": vars}}
	}
	tpl := samtemplate.Template{
		"Parameters": map[string]any{
			"Stage":     map[string]any{"Type": "String", "Default": "prod"},
			"ApiDomain": map[string]any{"Type": "String"},
		},
		"Globals": map[string]any{"Function": variables(map[string]any{
			"STAGE":      map[string]any{"Ref": "Stage"},
			"TABLE_NAME": map[string]any{"Ref": "Table"},
			"SECRET":     "",
		})},
		"Resources": map[string]any{
			"Table": map[string]any{"Type": "AWS::DynamoDB::Table"},
			"Zip":   map[string]any{"Type": "AWS::Serverless::Function", "Properties": variables(map[string]any{"DOMAIN": map[string]any{"Ref": "ApiDomain"}})},
			"Image": map[string]any{"Type": "AWS::Serverless::Function", "Properties": map[string]any{"PackageType": "Image"}},
		},
	}
	image := map[string]string{"HOME": "/tmp", "AWS_REGION": "image-region"}
	overrides := map[string]string{"SECRET": "sample", "UNDECLARED": "dropped"}
	sam := map[string]string{
		"AWS_SAM_LOCAL": "true", "AWS_REGION": devenv.SAMLocalRegion, "AWS_DEFAULT_REGION": devenv.SAMLocalRegion,
		"AWS_ACCESS_KEY_ID": "defaultkey", "AWS_SECRET_ACCESS_KEY": "defaultsecret",
	}
	for fn, own := range map[string]map[string]string{
		"Zip":   {"DOMAIN": "ApiDomain"},
		"Image": {"HOME": "/tmp"},
	} {
		want := map[string]string{"AWS_LAMBDA_FUNCTION_NAME": fn, "STAGE": "prod", "TABLE_NAME": "Table", "SECRET": "sample"}
		maps.Copy(want, sam)
		maps.Copy(want, own)
		got, err := tpl.SAMLocalEnv(fn, image, overrides)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s: SAMLocalEnv\n got %v\nwant %v", fn, got, want)
		}
	}
	if _, err := tpl.SAMLocalEnv("Missing", nil, nil); err == nil {
		t.Error("SAMLocalEnv of a function the template does not have: no error")
	}
}
