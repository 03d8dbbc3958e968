package samtemplate_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ovrlrd/cloud/internal/devkit/samtemplate"
	"github.com/ovrlrd/cloud/internal/web"
)

// securityHeaderFields are the fields of a response headers policy's
// SecurityHeadersConfig, each with the header it sets and its value.
var securityHeaderFields = map[string]struct {
	header string
	value  func(field map[string]any) string
}{
	"ContentSecurityPolicy": {"Content-Security-Policy", func(f map[string]any) string { return fmt.Sprint(f["ContentSecurityPolicy"]) }},
	"ContentTypeOptions":    {"X-Content-Type-Options", func(map[string]any) string { return "nosniff" }},
	"FrameOptions":          {"X-Frame-Options", func(f map[string]any) string { return fmt.Sprint(f["FrameOption"]) }},
	"ReferrerPolicy":        {"Referrer-Policy", func(f map[string]any) string { return fmt.Sprint(f["ReferrerPolicy"]) }},
	"StrictTransportSecurity": {"Strict-Transport-Security", func(f map[string]any) string {
		v := fmt.Sprintf("max-age=%v", f["AccessControlMaxAgeSec"])
		if f["IncludeSubdomains"] == true {
			v += "; includeSubDomains"
		}
		if f["Preload"] == true {
			v += "; preload"
		}
		return v
	}},
}

// CloudFront answers for the web client with exactly the headers
// internal/web gives it under make dev, each replacing whatever the bucket
// would send, so the page runs under the same rules in both places.
func TestWebHeadersAreTheServers(t *testing.T) {
	tpl := load(t)
	cfg, err := tpl.Eval(props(t, tpl, "WebHeadersPolicy")["ResponseHeadersPolicyConfig"], tpl.SampleEnv(variants()["defaults"], nil))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	set := func(header, value string, override any) {
		if _, dup := got[header]; dup {
			t.Errorf("%s set twice", header)
		}
		got[header] = value
		if override != true {
			t.Errorf("%s: Override %v, want true (the bucket's own header would win)", header, override)
		}
	}
	security, _ := path(cfg, "SecurityHeadersConfig").(map[string]any)
	for _, k := range sortedKeys(security) {
		f, known := securityHeaderFields[k]
		field, _ := security[k].(map[string]any)
		if !known {
			t.Errorf("SecurityHeadersConfig.%s: a header internal/web does not send", k)
			continue
		}
		set(f.header, f.value(field), field["Override"])
	}
	custom, _ := path(cfg, "CustomHeadersConfig", "Items").([]any)
	for _, item := range custom {
		h, _ := item.(map[string]any)
		set(fmt.Sprint(h["Header"]), fmt.Sprint(h["Value"]), h["Override"])
	}
	for _, k := range []string{"CorsConfig", "RemoveHeadersConfig", "ServerTimingHeadersConfig"} {
		if path(cfg, k) != nil {
			t.Errorf("%s: internal/web has nothing like it", k)
		}
	}
	if want := web.SecurityHeaders(); !maps.Equal(got, want) {
		t.Errorf("WebHeadersPolicy sets\n%v\ninternal/web sends\n%v", got, want)
	}
}

// The web client's bucket is private and encrypted, and its policy lets
// CloudFront read the files under web/ for this distribution only, over
// TLS only, and lets nobody else do anything.
func TestWebBucketIsPrivate(t *testing.T) {
	tpl := load(t)
	p := props(t, tpl, "WebBucket")
	for _, k := range []string{"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"} {
		if path(p, "PublicAccessBlockConfiguration", k) != true {
			t.Errorf("PublicAccessBlockConfiguration.%s = %v", k, path(p, "PublicAccessBlockConfiguration", k))
		}
	}
	if path(p, "BucketEncryption", "ServerSideEncryptionConfiguration") == nil {
		t.Error("no default encryption")
	}
	if !reflect.DeepEqual(path(p, "OwnershipControls", "Rules"), []any{map[string]any{"ObjectOwnership": "BucketOwnerEnforced"}}) {
		t.Errorf("OwnershipControls %v: want BucketOwnerEnforced (no ACLs)", p["OwnershipControls"])
	}
	for _, k := range []string{"WebsiteConfiguration", "CorsConfiguration", "AccessControl"} {
		if p[k] != nil {
			t.Errorf("%s: the bucket is read through CloudFront alone", k)
		}
	}

	env := tpl.SampleEnv(variants()["defaults"], nil)
	bucket := env.Attrs["WebBucket.Arn"]
	distribution := "arn:aws:cloudfront::" + samtemplate.SampleAccount + ":distribution/" + env.Refs["Distribution"]
	var policies int
	for _, id := range tpl.ResourceIDs() {
		r := tpl.Resources()[id]
		if r["Type"] != "AWS::S3::BucketPolicy" || !reflect.DeepEqual(path(r, "Properties", "Bucket"), map[string]any{"Ref": "WebBucket"}) {
			continue
		}
		policies++
		doc, err := tpl.Eval(path(r, "Properties", "PolicyDocument"), env)
		if err != nil {
			t.Fatal(err)
		}
		var read, tls bool
		for _, s := range path(doc, "Statement").([]any) {
			m := s.(map[string]any)
			switch {
			case m["Effect"] == "Deny" && m["Principal"] == "*" && m["Action"] == "s3:*" &&
				path(m, "Condition", "Bool", "aws:SecureTransport") == "false" &&
				reflect.DeepEqual(m["Resource"], []any{bucket, bucket + "/*"}):
				tls = true
			case m["Effect"] == "Allow" &&
				reflect.DeepEqual(m["Principal"], map[string]any{"Service": "cloudfront.amazonaws.com"}) &&
				m["Action"] == "s3:GetObject" && m["Resource"] == bucket+"/web/*" &&
				reflect.DeepEqual(m["Condition"], map[string]any{"StringEquals": map[string]any{"AWS:SourceArn": distribution}}):
				read = true
			default:
				t.Errorf("%s: statement %v is neither CloudFront's read of web/ for %s nor the TLS deny", id, m, distribution)
			}
		}
		if !read || !tls {
			t.Errorf("%s: CloudFront's read %v, TLS deny %v", id, read, tls)
		}
	}
	if policies != 1 {
		t.Errorf("%d policies on WebBucket, want 1", policies)
	}
	oac := path(props(t, tpl, "WebOriginAccessControl"), "OriginAccessControlConfig")
	for k, want := range map[string]string{"OriginAccessControlOriginType": "s3", "SigningBehavior": "always", "SigningProtocol": "sigv4"} {
		if got := path(oac, k); got != want {
			t.Errorf("WebOriginAccessControl %s %v, want %s", k, got, want)
		}
	}
}

// The outputs deploy.yml and the README rely on: the web client's address
// under the API's base URL, its bucket, and the Services ID its
// config.json names, there only when the stack accepts one.
func TestWebOutputs(t *testing.T) {
	tpl := load(t)
	outputs, _ := tpl["Outputs"].(map[string]any)
	for name, params := range variants() {
		env := tpl.SampleEnv(params, nil)
		base, err := tpl.EvalString(path(outputs, "ApiBaseUrl", "Value"), env)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := tpl.EvalString(path(outputs, "WebUrl", "Value"), env); err != nil || got != base+"/web/" {
			t.Errorf("%s: WebUrl %q (%v), want %q", name, got, err, base+"/web/")
		}
	}
	if v := path(outputs, "WebBucketName", "Value"); !reflect.DeepEqual(v, map[string]any{"Ref": "WebBucket"}) {
		t.Errorf("WebBucketName %v", v)
	}
	out, _ := outputs["WebServicesId"].(map[string]any)
	for ids, want := range map[string]string{"": "", "com.example.web": "com.example.web", "com.example.web,com.example.other": "com.example.web"} {
		env := tpl.SampleEnv(map[string]string{"SsmPrefix": "/ovrlrd/dev", "AppleServicesIds": ids}, nil)
		on, err := tpl.Eval(map[string]any{"Condition": out["Condition"]}, env)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if on == true {
			if got, err = tpl.EvalString(out["Value"], env); err != nil {
				t.Fatal(err)
			}
		}
		if got != want || (on == true) != (want != "") {
			t.Errorf("AppleServicesIds %q: WebServicesId %q (output there: %v), want %q", ids, got, on, want)
		}
	}
}

// The viewer-request function, run by Node.js, turns a folder's URL into
// its index.html and leaves every other URL alone.
func TestWebIndexFunction(t *testing.T) {
	tpl := load(t)
	p := props(t, tpl, "WebIndexFunction")
	if path(p, "FunctionConfig", "Runtime") != "cloudfront-js-2.0" || p["AutoPublish"] != true {
		t.Errorf("FunctionConfig %v AutoPublish %v: want cloudfront-js-2.0, published (a distribution runs the live stage)", p["FunctionConfig"], p["AutoPublish"])
	}
	node, err := exec.LookPath("node")
	if err != nil {
		// A prerequisite of make deps (README, Prerequisites): its absence
		// is a broken setup, not a reason to leave the function untried.
		t.Fatalf("node, which runs the function's code here, is not installed: %v", err)
	}
	cases := map[string]string{
		"/web/":            "/web/index.html",
		"/web/index.html":  "/web/index.html",
		"/web/app.js":      "/web/app.js",
		"/web/config.json": "/web/config.json",
		"/web/sub/":        "/web/sub/index.html",
		"/web/sub":         "/web/sub",
		"/web":             "301 /web/",
	}
	uris, _ := json.Marshal(sortedKeys(cases))
	script := filepath.Join(t.TempDir(), "index.js")
	code := fmt.Sprint(p["FunctionCode"]) + `
const out = {};
for (const uri of ` + string(uris) + `) {
  const r = handler({ request: { method: "GET", uri, querystring: {}, headers: {}, cookies: {} } });
  out[uri] = r.statusCode ? r.statusCode + " " + r.headers.location.value : r.uri;
}
console.log(JSON.stringify(out));
`
	if err := os.WriteFile(script, []byte(code), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := exec.Command(node, script).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, b)
	}
	var got map[string]string
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if !maps.Equal(got, cases) {
		t.Errorf("the function maps %v, want %v", got, cases)
	}
}
