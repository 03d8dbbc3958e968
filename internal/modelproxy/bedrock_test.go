package modelproxy

import (
	"context"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ovrlrd/cloud/internal/devkit/anthropicfake"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

func testCreds() aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return anthropicfake.BedrockCredentials(), nil
	})
}

const bedrockModel = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"

// TestBedrockSignedByProxy: the proxy's SigV4 signature is accepted by the
// Bedrock stand-in, which recomputes it; the eventstream answer is metered
// to exactly the usage the stand-in reported. With other credentials the
// stand-in refuses (403), which the proxy passes on unmetered.
func TestBedrockSignedByProxy(t *testing.T) {
	fake := anthropicfake.NewBedrock(anthropicfake.Say("Signed and streamed."))
	defer fake.Close()
	p := newProxy(t, Options{Provider: ovrlrd.Bedrock, Upstream: fake.URL, Region: anthropicfake.BedrockRegion, AWSCredentials: testCreds()})
	s := open(t, p)

	if r := send(t, "GET", s.BaseURL()+"/inference-profiles?type=SYSTEM_DEFINED", "", nil); r.status != 200 ||
		!strings.Contains(r.body, "inferenceProfileSummaries") {
		t.Fatalf("inference profiles: %d %s", r.status, r.body)
	}
	select {
	case <-s.Asked():
		t.Fatal("the control-plane call the CLI makes as it starts counted as its first model request")
	default:
	}
	body := `{"anthropic_version":"bedrock-2023-05-31","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`
	r := send(t, "POST", s.BaseURL()+"/model/"+bedrockModel+"/invoke-with-response-stream", body,
		map[string]string{"Content-Type": "application/json", "Accept": "application/json", "Authorization": "Bearer " + s.Token()})
	if r.status != 200 || r.header.Get("Content-Type") != "application/vnd.amazon.eventstream" {
		t.Fatalf("invoke: %d %s %q", r.status, r.header.Get("Content-Type"), r.body)
	}
	select {
	case <-s.Asked():
	default:
		t.Fatal("Asked still open after a model request")
	}
	got, want := s.Usage(), fake.Usage()
	if want.InputTokens == 0 || got.InputTokens != int64(want.InputTokens) || got.OutputTokens != int64(want.OutputTokens) {
		t.Errorf("usage = %+v, stand-in reported %+v", got, want)
	}
	if cost := (float64(want.InputTokens)*3 + float64(want.OutputTokens)*15) / 1e6; !near(got.CostUSD, cost) {
		t.Errorf("cost = %v, want %v (Sonnet 4.5)", got.CostUSD, cost)
	}
	reqs := fake.Requests()
	if len(reqs) != 1 || reqs[0].Model != bedrockModel || !reqs[0].Stream {
		t.Fatalf("stand-in requests = %+v", reqs)
	}
	if a := reqs[0].Header.Get("Authorization"); !strings.HasPrefix(a, "AWS4-HMAC-SHA256 Credential="+anthropicfake.BedrockCredentials().AccessKeyID+"/") {
		t.Errorf("stand-in saw Authorization %q", a)
	}

	wrong := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		c := anthropicfake.BedrockCredentials()
		c.SecretAccessKey = "not-the-secret"
		return c, nil
	})
	p2 := newProxy(t, Options{Provider: ovrlrd.Bedrock, Upstream: fake.URL, Region: anthropicfake.BedrockRegion, AWSCredentials: wrong})
	s2 := open(t, p2)
	r = send(t, "POST", s2.BaseURL()+"/model/"+bedrockModel+"/invoke", body, nil)
	if r.status != http.StatusForbidden {
		t.Errorf("wrong secret: status %d %s", r.status, r.body)
	}
	if u := s2.Usage(); u.InputTokens != 0 {
		t.Errorf("refused call metered: %+v", u)
	}
}

// ownGoroutines lists goroutines running this package's non-test code.
func ownGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "internal/modelproxy.(*") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

// TestDefaultUpstreams: without Upstream, Anthropic and OAuth go to the
// public API, and Bedrock's invokes go to the regional runtime host while
// the profile list goes to the regional control plane; nothing the client
// sends chooses the host.
func TestDefaultUpstreams(t *testing.T) {
	a := newProxy(t, Options{Provider: ovrlrd.OAuth, Credential: realOAuth})
	if c := a.route("POST", "/v1/messages"); c.target.String() != "https://api.anthropic.com/v1/messages" {
		t.Errorf("oauth target = %s", c.target)
	}
	b := newProxy(t, Options{Provider: ovrlrd.Bedrock, Region: "eu-west-3", AWSCredentials: testCreds()})
	for path, want := range map[string]string{
		"/model/" + bedrockModel + "/invoke-with-response-stream": "https://bedrock-runtime.eu-west-3.amazonaws.com/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke-with-response-stream",
		"/inference-profiles": "https://bedrock.eu-west-3.amazonaws.com/inference-profiles",
	} {
		method := "POST"
		if path == "/inference-profiles" {
			method = "GET"
		}
		if c := b.route(method, path); c == nil || c.target.String() != want {
			t.Errorf("%s %s: target %v, want %s", method, path, c, want)
		}
	}
}
