package samtemplate_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// Sessions uploaded for an import sit under uploads/ of the private
// sessions bucket, which expires them after a day; only the stream
// function writes and reads them (its presigned PUTs act with its role),
// and the chat function deletes them with the account.
func TestImportUploads(t *testing.T) {
	tpl := load(t)
	p := props(t, tpl, "SessionsBucket")
	var rule map[string]any
	for _, r := range path(p, "LifecycleConfiguration", "Rules").([]any) {
		if m := r.(map[string]any); m["Prefix"] == "uploads/" {
			rule = m
		}
	}
	if rule == nil || rule["Status"] != "Enabled" || intOf(t, rule["ExpirationInDays"]) != 1 {
		t.Errorf("the uploads' lifecycle rule: %v", rule)
	}
	block := path(p, "PublicAccessBlockConfiguration").(map[string]any)
	for _, k := range []string{"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"} {
		if block[k] != true {
			t.Errorf("SessionsBucket %s = %v", k, block[k])
		}
	}

	got := map[string][]string{}
	for _, fn := range functions {
		for _, params := range variants() {
			for _, s := range statements(t, tpl, fn, params) {
				for _, r := range s.Resources {
					if strings.HasSuffix(r, "/uploads/*") {
						got[fn] = slices.Compact(slices.Sorted(slices.Values(append(got[fn], s.Actions...))))
					}
				}
			}
		}
	}
	want := map[string][]string{
		"ChatFunction":   {"s3:DeleteObject"},
		"StreamFunction": {"s3:DeleteObject", "s3:GetObject", "s3:PutObject"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("actions on uploads/* per function %v, want %v", got, want)
	}
}
