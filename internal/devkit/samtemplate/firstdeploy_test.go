package samtemplate_test

import (
	"testing"

	"github.com/ovrlrd/cloud/internal/devkit/samtemplate"
)

// Buffered turns are asynchronous invokes of the stream function: Lambda
// must never retry one (each retry is a paid turn run again), and an event
// throttled in its queue is dropped well before it could surprise anyone.
func TestBufferedTurnsAreNeverRetried(t *testing.T) {
	tpl := load(t)
	cfg, _ := props(t, tpl, "StreamFunction")["EventInvokeConfig"].(map[string]any)
	if cfg == nil {
		t.Fatal("StreamFunction has no EventInvokeConfig: Lambda would retry a failed turn twice")
	}
	if n := intOf(t, cfg["MaximumRetryAttempts"]); n != 0 {
		t.Errorf("MaximumRetryAttempts %d, want 0", n)
	}
	if age := intOf(t, cfg["MaximumEventAgeInSeconds"]); age < 60 || age > 900 {
		t.Errorf("MaximumEventAgeInSeconds %d, want 60-900 (Lambda's default is six hours)", age)
	}
	// A dropped event is a user without an answer: an alarm says so.
	alarmed := false
	for _, r := range tpl.Resources() {
		p, _ := r["Properties"].(map[string]any)
		dims, _ := p["Dimensions"].([]any)
		if r["Type"] == "AWS::CloudWatch::Alarm" && p["MetricName"] == "AsyncEventsDropped" && len(dims) == 1 &&
			path(dims[0], "Value", "Ref") == "StreamFunction" {
			alarmed = true
		}
	}
	if !alarmed {
		t.Error("no alarm on the stream function's AsyncEventsDropped")
	}
}

// StreamConcurrency reserves the stream function's concurrency when given,
// and nothing otherwise (a new account's quota may be 10 in all).
func TestStreamConcurrency(t *testing.T) {
	tpl := load(t)
	raw := props(t, tpl, "StreamFunction")["ReservedConcurrentExecutions"]
	for param, want := range map[string]any{"": nil, "5": "5"} {
		got, err := tpl.Eval(raw, tpl.SampleEnv(map[string]string{"SsmPrefix": "/ovrlrd/dev", "StreamConcurrency": param}, nil))
		if err != nil || got != want {
			t.Errorf("StreamConcurrency=%q: reserved %v (%v), want %v", param, got, err, want)
		}
	}
}

// CloudFront resolves the origin secret only when the distribution
// changes: a version in the reference makes the change, and the same
// version in the stream function's environment starts environments that
// read the new secret with the previous one.
func TestOriginSecretVersion(t *testing.T) {
	tpl := load(t)
	var header any
	for _, o := range path(props(t, tpl, "Distribution"), "DistributionConfig", "Origins").([]any) {
		if hs, ok := o.(map[string]any)["OriginCustomHeaders"].([]any); ok {
			header = hs[0].(map[string]any)["HeaderValue"]
		}
	}
	for version, want := range map[string]string{
		"":  "{{resolve:ssm:/ovrlrd/dev/origin-secret}}",
		"7": "{{resolve:ssm:/ovrlrd/dev/origin-secret:7}}",
	} {
		e := tpl.SampleEnv(map[string]string{"SsmPrefix": "/ovrlrd/dev", "OriginSecretVersion": version}, nil)
		got, err := tpl.Eval(header, e)
		if err != nil || got != want {
			t.Errorf("OriginSecretVersion=%q: CloudFront sends %v (%v), want %s", version, got, err, want)
		}
		env, err := tpl.Eval(functionEnv(t, tpl, "StreamFunction")["ORIGIN_SECRET_VERSION"], e)
		if err != nil || env != version {
			t.Errorf("OriginSecretVersion=%q: the stream function's ORIGIN_SECRET_VERSION is %v (%v)", version, env, err)
		}
	}
}

// With a model given, Bedrock grants that model alone: as a foundation
// model in any region, and through any geography's inference profile.
func TestBedrockGrantScopedToTheModel(t *testing.T) {
	tpl := load(t)
	const region = "us-east-1"
	foundation := func(id string) samtemplate.Request {
		return samtemplate.Request{Action: "bedrock:InvokeModelWithResponseStream", Resource: "arn:aws:bedrock:" + region + "::foundation-model/" + id}
	}
	profile := func(id string) samtemplate.Request {
		return samtemplate.Request{Action: "bedrock:InvokeModel", Resource: "arn:aws:bedrock:" + region + ":" + samtemplate.SampleAccount + ":inference-profile/" + id}
	}
	const sonnet, opus = "anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-opus-4-1-20250805-v1:0"
	for _, model := range []string{sonnet, "us." + sonnet, "global." + sonnet} {
		st := statements(t, tpl, "StreamFunction", map[string]string{"SsmPrefix": "/ovrlrd/dev", "ClaudeProvider": "bedrock", "ClaudeModel": model})
		for _, r := range []samtemplate.Request{foundation(sonnet), profile("us." + sonnet), profile("eu." + sonnet)} {
			if !samtemplate.Allows(st, r) {
				t.Errorf("ClaudeModel=%s: %s refused", model, r)
			}
		}
		for _, r := range []samtemplate.Request{foundation(opus), profile("us." + opus), foundation("amazon.titan-text-express-v1")} {
			if samtemplate.Allows(st, r) {
				t.Errorf("ClaudeModel=%s: %s allowed", model, r)
			}
		}
	}
	// Without a model, any Anthropic model (the CLI chooses).
	st := statements(t, tpl, "StreamFunction", map[string]string{"SsmPrefix": "/ovrlrd/dev", "ClaudeProvider": "bedrock"})
	if !samtemplate.Allows(st, foundation(opus)) {
		t.Error("without ClaudeModel, Anthropic models are refused")
	}
	env, err := tpl.Eval(functionEnv(t, tpl, "StreamFunction")["ANTHROPIC_MODEL"],
		tpl.SampleEnv(map[string]string{"SsmPrefix": "/ovrlrd/dev", "ClaudeModel": "us." + sonnet}, nil))
	if err != nil || env != "us."+sonnet {
		t.Errorf("ANTHROPIC_MODEL is %v (%v), want the ClaudeModel parameter", env, err)
	}
}
