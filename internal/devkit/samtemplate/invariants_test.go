package samtemplate_test

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/gateway"
	"github.com/ovrlrd/cloud/internal/devkit/samtemplate"
)

var functions = []string{"AuthFunction", "ChatFunction", "StreamFunction"}

func props(t *testing.T, tpl samtemplate.Template, id string) map[string]any {
	t.Helper()
	r, ok := tpl.Resources()[id]
	if !ok {
		t.Fatalf("no resource %s", id)
	}
	p, _ := r["Properties"].(map[string]any)
	return p
}

// path walks nested maps by key.
func path(v any, keys ...string) any {
	for _, k := range keys {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

func intOf(t *testing.T, v any) int {
	t.Helper()
	n, err := strconv.Atoi(fmt.Sprint(v))
	if err != nil {
		t.Fatalf("%v is not an integer", v)
	}
	return n
}

func TestFunctionsRunArm64OnAL2023(t *testing.T) {
	tpl := load(t)
	globals := path(map[string]any(tpl), "Globals", "Function").(map[string]any)
	for _, k := range []string{"Runtime", "Architectures", "Handler", "PackageType"} {
		if _, ok := globals[k]; ok {
			// Globals merge lists and apply to the image function too.
			t.Errorf("Globals.Function.%s: set it per function", k)
		}
	}
	if globals["Tracing"] != "Active" {
		t.Errorf("Globals.Function.Tracing = %v, want Active", globals["Tracing"])
	}
	count := 0
	for id, r := range tpl.Resources() {
		switch r["Type"] {
		case "AWS::Serverless::Function", "AWS::Lambda::Function":
		default:
			continue
		}
		count++
		p := props(t, tpl, id)
		if !reflect.DeepEqual(p["Architectures"], []any{"arm64"}) {
			t.Errorf("%s: Architectures %v, want [arm64]", id, p["Architectures"])
		}
		if p["PackageType"] == "Image" {
			if _, ok := p["Runtime"]; ok {
				t.Errorf("%s: an image function takes no Runtime", id)
			}
			continue
		}
		if p["Runtime"] != "provided.al2023" || p["Handler"] != "bootstrap" {
			t.Errorf("%s: runtime %v handler %v, want provided.al2023 and bootstrap", id, p["Runtime"], p["Handler"])
		}
		meta, _ := tpl.Resources()[id]["Metadata"].(map[string]any)
		if meta["BuildMethod"] != "makefile" {
			t.Errorf("%s: BuildMethod %v, want makefile (the Makefile's build-%s target)", id, meta["BuildMethod"], id)
		}
	}
	if count != len(functions) {
		t.Errorf("%d functions, want %d", count, len(functions))
	}
}

func TestStreamFunction(t *testing.T) {
	tpl := load(t)
	p := props(t, tpl, "StreamFunction")
	if p["PackageType"] != "Image" {
		t.Errorf("PackageType %v: the CLI does not fit a zip", p["PackageType"])
	}
	meta := tpl.Resources()["StreamFunction"]["Metadata"].(map[string]any)
	if meta["Dockerfile"] != "Dockerfile" || meta["DockerContext"] != "." || meta["DockerTag"] == nil {
		t.Errorf("Metadata %v", meta)
	}
	url, _ := p["FunctionUrlConfig"].(map[string]any)
	if url["InvokeMode"] != "RESPONSE_STREAM" || url["AuthType"] != "NONE" {
		t.Errorf("FunctionUrlConfig %v, want RESPONSE_STREAM and NONE", url)
	}
	if intOf(t, p["Timeout"]) != 900 {
		t.Errorf("Timeout %v, want 900", p["Timeout"])
	}
	if intOf(t, p["MemorySize"]) < 1769 {
		t.Errorf("MemorySize %v: below one full vCPU (1769 MB)", p["MemorySize"])
	}
	// A turn must end (and be saved) before Lambda ends the invocation.
	env := functionEnv(t, tpl, "StreamFunction")
	turn, err := time.ParseDuration(fmt.Sprint(env["CLAUDE_TIMEOUT"]))
	if err != nil || turn >= time.Duration(intOf(t, p["Timeout"]))*time.Second {
		t.Errorf("CLAUDE_TIMEOUT %v must be below the function's %v s", env["CLAUDE_TIMEOUT"], p["Timeout"])
	}
	for _, id := range []string{"AuthFunction", "ChatFunction"} {
		// The HTTP API gives up at 30 s.
		if n := intOf(t, props(t, tpl, id)["Timeout"]); n > 29 {
			t.Errorf("%s: Timeout %d above the HTTP API's 30 s", id, n)
		}
	}
}

// The table and the bucket outlive the stack and any replacement, but a
// failed first create removes them: it leaves nothing that costs money.
// Deletion protection would stop that removal, so it waits for ProtectTable.
func TestDataIsKept(t *testing.T) {
	tpl := load(t)
	for _, id := range []string{"Table", "SessionsBucket"} {
		r := tpl.Resources()[id]
		if r["DeletionPolicy"] != "RetainExceptOnCreate" || r["UpdateReplacePolicy"] != "Retain" {
			t.Errorf("%s policies %v/%v, want RetainExceptOnCreate/Retain", id, r["DeletionPolicy"], r["UpdateReplacePolicy"])
		}
	}
	p := props(t, tpl, "Table")
	if p["BillingMode"] != "PAY_PER_REQUEST" ||
		path(p, "PointInTimeRecoverySpecification", "PointInTimeRecoveryEnabled") != true ||
		path(p, "SSESpecification", "SSEEnabled") != true {
		t.Errorf("table properties %v", p)
	}
	// Protected unless asked otherwise: a stack deployed before the
	// parameter existed keeps its protection.
	for protect, want := range map[string]bool{"": true, "false": false, "true": true} {
		params := map[string]string{"SsmPrefix": "/ovrlrd/dev"}
		if protect != "" {
			params["ProtectTable"] = protect
		}
		got, err := tpl.Eval(p["DeletionProtectionEnabled"], tpl.SampleEnv(params, nil))
		if err != nil || got != want {
			t.Errorf("ProtectTable=%q: deletion protection %v (%v), want %v", protect, got, err, want)
		}
	}
}

func TestBucketIsPrivate(t *testing.T) {
	tpl := load(t)
	p := props(t, tpl, "SessionsBucket")
	block := p["PublicAccessBlockConfiguration"].(map[string]any)
	for _, k := range []string{"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"} {
		if block[k] != true {
			t.Errorf("PublicAccessBlockConfiguration.%s = %v", k, block[k])
		}
	}
	if path(p, "BucketEncryption", "ServerSideEncryptionConfiguration") == nil {
		t.Error("no default encryption")
	}
	var expires, aborts bool
	for _, r := range path(p, "LifecycleConfiguration", "Rules").([]any) {
		m := r.(map[string]any)
		if m["Status"] != "Enabled" {
			continue
		}
		expires = expires || m["ExpirationInDays"] != nil
		aborts = aborts || m["AbortIncompleteMultipartUpload"] != nil
	}
	if !expires || !aborts {
		t.Errorf("lifecycle: expiry %v, abort incomplete uploads %v", expires, aborts)
	}
}

func TestBucketDeniesInsecureTransport(t *testing.T) {
	tpl := load(t)
	var found bool
	for id, r := range tpl.Resources() {
		if r["Type"] != "AWS::S3::BucketPolicy" {
			continue
		}
		p := props(t, tpl, id)
		if !reflect.DeepEqual(p["Bucket"], map[string]any{"Ref": "SessionsBucket"}) {
			continue
		}
		for _, s := range path(p, "PolicyDocument", "Statement").([]any) {
			m := s.(map[string]any)
			if m["Effect"] == "Deny" && m["Principal"] == "*" && m["Action"] == "s3:*" &&
				path(m, "Condition", "Bool", "aws:SecureTransport") == "false" && len(m["Resource"].([]any)) == 2 {
				found = true
			}
		}
	}
	if !found {
		t.Error("no bucket policy denying requests without TLS on the bucket and its objects")
	}
}

// One base URL: CloudFront sends the stream paths (as the local gateway
// does) to the Function URL, the web client's paths to its bucket, and
// everything else to the HTTP API. The API's behaviours are uncached,
// HTTPS only, forwarding every viewer header but Host; the web client's
// are read only (GET and HEAD), cached, under its security headers.
func TestDistribution(t *testing.T) {
	tpl := load(t)
	const cachingDisabled = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
	const allViewerExceptHost = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
	dc := props(t, tpl, "Distribution")["DistributionConfig"].(map[string]any)
	if dc["HttpVersion"] != "http2and3" || dc["Enabled"] != true {
		t.Errorf("HttpVersion %v Enabled %v", dc["HttpVersion"], dc["Enabled"])
	}
	origins := map[string]map[string]any{}
	for _, o := range dc["Origins"].([]any) {
		m := o.(map[string]any)
		origins[m["Id"].(string)] = m
		if m["S3OriginConfig"] == nil && path(m, "CustomOriginConfig", "OriginProtocolPolicy") != "https-only" {
			t.Errorf("origin %v: not https-only", m["Id"])
		}
	}
	checkBehavior := func(name string, b map[string]any) {
		if b["ViewerProtocolPolicy"] != "https-only" || b["CachePolicyId"] != cachingDisabled ||
			b["OriginRequestPolicyId"] != allViewerExceptHost {
			t.Errorf("%s: %v", name, b)
		}
		methods := fmt.Sprint(b["AllowedMethods"])
		for _, m := range []string{"GET", "POST", "DELETE", "OPTIONS"} {
			if !strings.Contains(methods, m) {
				t.Errorf("%s: %s not allowed", name, m)
			}
		}
	}
	def := dc["DefaultCacheBehavior"].(map[string]any)
	checkBehavior("default", def)
	api := origins[def["TargetOriginId"].(string)]
	if !strings.Contains(fmt.Sprint(api["DomainName"]), "HttpApi") {
		t.Errorf("default behaviour goes to %v, want the HTTP API", api["DomainName"])
	}
	var streamPatterns, webPatterns []string
	for _, b := range dc["CacheBehaviors"].([]any) {
		m := b.(map[string]any)
		o := origins[m["TargetOriginId"].(string)]
		if o["S3OriginConfig"] != nil {
			webPatterns = append(webPatterns, m["PathPattern"].(string))
			checkWebBehavior(t, m, o)
			continue
		}
		checkBehavior(fmt.Sprint(m["PathPattern"]), m)
		streamPatterns = append(streamPatterns, m["PathPattern"].(string))
		if !strings.Contains(fmt.Sprint(o["DomainName"]), "StreamFunctionUrl") {
			t.Errorf("%v goes to %v, want the Function URL", m["PathPattern"], o["DomainName"])
		}
		var secret bool
		headers, _ := o["OriginCustomHeaders"].([]any)
		for _, h := range headers {
			hm := h.(map[string]any)
			v := fmt.Sprint(hm["HeaderValue"])
			secret = secret || (hm["HeaderName"] == "X-Origin-Secret" &&
				strings.Contains(v, "{{resolve:ssm:${SsmPrefix}/origin-secret}}"))
		}
		if !secret {
			t.Errorf("origin %v: no X-Origin-Secret from SSM", o["Id"])
		}
	}
	if !slices.Equal(streamPatterns, gateway.StreamPaths) {
		t.Errorf("stream behaviours %v, gateway %v", streamPatterns, gateway.StreamPaths)
	}
	if !slices.Equal(webPatterns, gateway.WebPaths) {
		t.Errorf("web client behaviours %v, gateway %v", webPatterns, gateway.WebPaths)
	}
	out := path(map[string]any(tpl), "Outputs", "ApiBaseUrl", "Value")
	if out == nil {
		t.Error("no ApiBaseUrl output")
	}
}

// checkWebBehavior checks a behaviour that goes to the web client's
// bucket, o: GET and HEAD only, through the origin access control, cached
// (CloudFront's managed CachingOptimized), with no viewer header sent on
// (one would break the access control's signature), plain HTTP redirected,
// WebHeadersPolicy on every answer, and WebIndexFunction naming folders'
// index.html.
func checkWebBehavior(t *testing.T, b, o map[string]any) {
	t.Helper()
	const cachingOptimized = "658327ea-f89d-4fab-a63d-7e88639e58f6"
	name := fmt.Sprint(b["PathPattern"])
	if !reflect.DeepEqual(o["DomainName"], map[string]any{"Fn::GetAtt": []any{"WebBucket", "RegionalDomainName"}}) ||
		path(o, "S3OriginConfig", "OriginAccessIdentity") != "" ||
		!reflect.DeepEqual(o["OriginAccessControlId"], map[string]any{"Fn::GetAtt": []any{"WebOriginAccessControl", "Id"}}) ||
		o["CustomOriginConfig"] != nil || o["OriginCustomHeaders"] != nil {
		t.Errorf("%s goes to %v, want WebBucket through WebOriginAccessControl alone", name, o)
	}
	for k, want := range map[string]any{
		"AllowedMethods":          []any{"GET", "HEAD"},
		"CachedMethods":           []any{"GET", "HEAD"},
		"ViewerProtocolPolicy":    "redirect-to-https",
		"CachePolicyId":           cachingOptimized,
		"OriginRequestPolicyId":   nil,
		"ResponseHeadersPolicyId": map[string]any{"Ref": "WebHeadersPolicy"},
		"FunctionAssociations": []any{map[string]any{"EventType": "viewer-request",
			"FunctionARN": map[string]any{"Fn::GetAtt": []any{"WebIndexFunction", "FunctionARN"}}}},
		"LambdaFunctionAssociations": nil,
		"TrustedKeyGroups":           nil,
	} {
		if !reflect.DeepEqual(b[k], want) {
			t.Errorf("%s: %s %v, want %v", name, k, b[k], want)
		}
	}
}

func TestHTTPAPI(t *testing.T) {
	tpl := load(t)
	p := props(t, tpl, "HttpApi")
	if p["StageName"] != "$default" {
		t.Errorf("StageName %v: the app needs the API at the root", p["StageName"])
	}
	if path(p, "DefaultRouteSettings", "ThrottlingRateLimit") == nil || path(p, "DefaultRouteSettings", "ThrottlingBurstLimit") == nil {
		t.Error("no default route throttling")
	}
	logs := path(p, "AccessLogSettings")
	if !reflect.DeepEqual(path(logs, "DestinationArn"), map[string]any{"Fn::GetAtt": []any{"HttpApiAccessLogs", "Arn"}}) {
		t.Errorf("access logs go to %v", path(logs, "DestinationArn"))
	}
	if f, _ := path(logs, "Format").(string); !strings.HasPrefix(f, "{") || strings.Contains(f, "$context.path") ||
		strings.Contains(f, "sourceIp") {
		t.Errorf("access log format %q: want JSON without paths (they carry ids) or client addresses", f)
	}
	// CORS only for the configured origins, and none when there are none.
	tplEnv := tpl.SampleEnv(map[string]string{"SsmPrefix": "/x/y"}, nil)
	if v, err := tpl.Eval(p["CorsConfiguration"], tplEnv); err != nil || v != nil {
		t.Errorf("CORS with no origins: %v %v", v, err)
	}
	tplEnv = tpl.SampleEnv(map[string]string{"SsmPrefix": "/x/y", "CorsOrigins": "https://a.example,https://b.example"}, nil)
	v, err := tpl.Eval(p["CorsConfiguration"], tplEnv)
	if err != nil || !reflect.DeepEqual(path(v, "AllowOrigins"), []any{"https://a.example", "https://b.example"}) {
		t.Errorf("CORS with origins: %v %v", v, err)
	}
}

// Every function's logs go to a log group of the stack with a retention,
// and each has alarms on errors, throttles and a duration near its timeout.
func TestOperations(t *testing.T) {
	tpl := load(t)
	res := tpl.Resources()
	for _, id := range append(slices.Clone(functions), "HttpApi") {
		var group any
		if id == "HttpApi" {
			group = path(props(t, tpl, id), "AccessLogSettings", "DestinationArn", "Fn::GetAtt")
			group = group.([]any)[0]
		} else {
			group = path(props(t, tpl, id), "LoggingConfig", "LogGroup", "Ref")
		}
		lg, ok := res[fmt.Sprint(group)]
		if !ok || lg["Type"] != "AWS::Logs::LogGroup" || path(lg, "Properties", "RetentionInDays") == nil {
			t.Errorf("%s: logs go to %v, want a log group of the stack with a retention", id, group)
		}
	}
	alarms := map[string]map[string]any{} // function/metric -> alarm properties
	for id, r := range res {
		if r["Type"] != "AWS::CloudWatch::Alarm" {
			continue
		}
		p := props(t, tpl, id)
		if p["AlarmActions"] == nil {
			t.Errorf("%s: no alarm actions", id)
		}
		for _, d := range p["Dimensions"].([]any) {
			dm := d.(map[string]any)
			if dm["Name"] == "FunctionName" {
				alarms[fmt.Sprint(path(dm, "Value", "Ref"))+"/"+p["MetricName"].(string)] = p
			}
		}
	}
	for _, fn := range functions {
		for _, metric := range []string{"Errors", "Throttles", "Duration"} {
			a, ok := alarms[fn+"/"+metric]
			if !ok {
				t.Errorf("%s: no %s alarm", fn, metric)
				continue
			}
			if metric == "Duration" {
				timeout := intOf(t, props(t, tpl, fn)["Timeout"]) * 1000
				th := intOf(t, a["Threshold"])
				if th > timeout || th < timeout*8/10 {
					t.Errorf("%s: duration alarm at %d ms for a %d ms timeout", fn, th, timeout)
				}
			}
		}
	}
	topic := res["AlarmTopic"]
	if topic["Condition"] != "HasAlarmEmail" {
		t.Errorf("alarm topic condition %v", topic["Condition"])
	}
}

// functionEnv is a function's environment with Globals merged in, as SAM
// merges them.
func functionEnv(t *testing.T, tpl samtemplate.Template, id string) map[string]any {
	t.Helper()
	env, err := tpl.FunctionVariables(id)
	if err != nil {
		t.Fatal(err)
	}
	return env
}
