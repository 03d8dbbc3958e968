package anthropicfake

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const bedrockModel = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"

var bedrockBody = []byte(`{"anthropic_version":"bedrock-2023-05-31","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`)

// bedrockRequest builds a request to the stand-in; the path keeps the
// model id's colon escaped, as the AWS SDKs send it.
func bedrockRequest(t *testing.T, s *Server, method, path string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return req
}

// signBedrock signs r (whose body is body) for the Bedrock mode, now: what
// a correct client does.
func signBedrock(r *http.Request, body []byte) error {
	sum := sha256.Sum256(body)
	r.ContentLength = int64(len(body))
	return v4.NewSigner().SignHTTP(r.Context(), BedrockCredentials(), r, hex.EncodeToString(sum[:]), "bedrock", BedrockRegion, time.Now().UTC())
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestBedrockSigV4: a request signed with BedrockCredentials for service
// bedrock in BedrockRegion is answered; unsigned, wrong-secret, wrong
// service, wrong region, stale, tampered-body and tampered-header requests
// are refused with 403 and never reach the script.
func TestBedrockSigV4(t *testing.T) {
	s := NewBedrock(Say("Signed."))
	defer s.Close()
	path := "/model/" + strings.ReplaceAll(bedrockModel, ":", "%3A") + "/invoke"

	ok := bedrockRequest(t, s, "POST", path, bedrockBody)
	if err := signBedrock(ok, bedrockBody); err != nil {
		t.Fatal(err)
	}
	if resp, b := do(t, ok); resp.StatusCode != 200 || !strings.Contains(string(b), `"Signed."`) {
		t.Fatalf("signed request: %d %s", resp.StatusCode, b)
	}

	sign := func(creds aws.Credentials, service, region string, when time.Time, body []byte) *http.Request {
		req := bedrockRequest(t, s, "POST", path, body)
		sum := sha256.Sum256(body)
		req.ContentLength = int64(len(body))
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), service, region, when); err != nil {
			t.Fatal(err)
		}
		return req
	}
	good, now := BedrockCredentials(), time.Now().UTC()
	badSecret := good
	badSecret.SecretAccessKey = "wrong"
	otherKey := good
	otherKey.AccessKeyID = "ASIAOTHERKEY00000000"
	tamperedBody := sign(good, "bedrock", BedrockRegion, now, bedrockBody)
	tamperedBody.Body = io.NopCloser(bytes.NewReader(bytes.Replace(bedrockBody, []byte("hi"), []byte("yo"), 1)))
	tamperedHeader := sign(good, "bedrock", BedrockRegion, now, bedrockBody)
	tamperedHeader.Header.Set("Content-Type", "text/plain")

	for name, req := range map[string]*http.Request{
		"unsigned":        bedrockRequest(t, s, "POST", path, bedrockBody),
		"wrong secret":    sign(badSecret, "bedrock", BedrockRegion, now, bedrockBody),
		"other key":       sign(otherKey, "bedrock", BedrockRegion, now, bedrockBody),
		"wrong service":   sign(good, "bedrock-runtime", BedrockRegion, now, bedrockBody),
		"wrong region":    sign(good, "bedrock", "eu-west-1", now, bedrockBody),
		"stale":           sign(good, "bedrock", BedrockRegion, now.Add(-time.Hour), bedrockBody),
		"tampered body":   tamperedBody,
		"tampered header": tamperedHeader,
	} {
		if resp, b := do(t, req); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: status %d %s, want 403", name, resp.StatusCode, b)
		}
	}
	if n := len(s.Requests()); n != 1 {
		t.Errorf("%d requests reached the script, want 1", n)
	}
}

// TestBedrockStream: invoke-with-response-stream answers eventstream chunk
// events, each holding one Anthropic event as base64 JSON, in the
// Messages API's order, the last carrying the invocation metrics; the
// request is recorded with the model from the path.
func TestBedrockStream(t *testing.T) {
	s := NewBedrock(Say("Streamed over eventstream."))
	defer s.Close()
	req := bedrockRequest(t, s, "POST", "/model/"+bedrockModel+"/invoke-with-response-stream", bedrockBody)
	if err := signBedrock(req, bedrockBody); err != nil {
		t.Fatal(err)
	}
	resp, body := do(t, req)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.amazon.eventstream" {
		t.Fatalf("status %d content-type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var types []string
	var text strings.Builder
	var last map[string]any
	dec := eventstream.NewDecoder()
	for r := bytes.NewReader(body); r.Len() > 0; {
		msg, err := dec.Decode(r, nil)
		if err != nil {
			t.Fatalf("frame: %v", err)
		}
		for _, h := range []string{":event-type=chunk", ":message-type=event", ":content-type=application/json"} {
			name, want, _ := strings.Cut(h, "=")
			if v := msg.Headers.Get(name); v == nil || v.String() != want {
				t.Errorf("header %s = %v", name, v)
			}
		}
		var chunk struct {
			Bytes []byte `json:"bytes"`
		}
		if err := json.Unmarshal(msg.Payload, &chunk); err != nil {
			t.Fatalf("payload %s: %v", msg.Payload, err)
		}
		var ev map[string]any
		if err := json.Unmarshal(chunk.Bytes, &ev); err != nil {
			t.Fatalf("event %s: %v", chunk.Bytes, err)
		}
		types = append(types, ev["type"].(string))
		if d, ok := ev["delta"].(map[string]any); ok && d["type"] == "text_delta" {
			text.WriteString(d["text"].(string))
		}
		last = ev
	}
	want := "message_start content_block_start content_block_delta content_block_delta content_block_delta content_block_stop message_delta message_stop"
	if got := strings.Join(types, " "); got != want {
		t.Errorf("events = %s", got)
	}
	if text.String() != "Streamed over eventstream." {
		t.Errorf("text = %q", text.String())
	}
	metrics, _ := last["amazon-bedrock-invocationMetrics"].(map[string]any)
	u := s.Usage()
	if metrics["inputTokenCount"] != float64(u.InputTokens) || metrics["outputTokenCount"] != float64(u.OutputTokens) || u.InputTokens == 0 {
		t.Errorf("metrics %v, usage %+v", metrics, u)
	}
	reqs := s.Requests()
	if len(reqs) != 1 || reqs[0].Model != bedrockModel || !reqs[0].Stream || reqs[0].Prompt() != "hi" {
		t.Errorf("recorded %+v", reqs)
	}
}

// TestBedrockInferenceProfiles: the control plane's list answers an empty
// page; unknown operations get 404.
func TestBedrockInferenceProfiles(t *testing.T) {
	s := NewBedrock(Say("OK."))
	defer s.Close()
	req := bedrockRequest(t, s, "GET", "/inference-profiles?type=SYSTEM_DEFINED", nil)
	if err := signBedrock(req, nil); err != nil {
		t.Fatal(err)
	}
	if resp, b := do(t, req); resp.StatusCode != 200 || strings.TrimSpace(string(b)) != `{"inferenceProfileSummaries":[]}` {
		t.Errorf("list: %d %s", resp.StatusCode, b)
	}
	req = bedrockRequest(t, s, "POST", "/model/x/converse", bedrockBody)
	if err := signBedrock(req, bedrockBody); err != nil {
		t.Fatal(err)
	}
	if resp, _ := do(t, req); resp.StatusCode != 404 {
		t.Errorf("converse: %d", resp.StatusCode)
	}
	if calls := s.Calls(); len(calls) != 2 || calls[0] != "GET /inference-profiles" {
		t.Errorf("calls = %v", calls)
	}
}
