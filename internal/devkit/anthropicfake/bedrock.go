package anthropicfake

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// NewBedrock starts a stand-in of Amazon Bedrock (runtime and control plane
// on one loopback port) answering with script, for the CLI with
// CLAUDE_CODE_USE_BEDROCK=1 and ANTHROPIC_BEDROCK_BASE_URL set. It answers:
//
//   - POST /model/{id}/invoke-with-response-stream: the same events as the
//     Anthropic mode, each wrapped in an eventstream "chunk" event whose
//     payload is {"bytes": base64 of the event JSON}; message_stop carries
//     amazon-bedrock-invocationMetrics, as Bedrock's does. No ping events.
//   - POST /model/{id}/invoke: the message as JSON.
//   - GET /inference-profiles: an empty ListInferenceProfiles page.
//
// Every request must be signed with SigV4 for BedrockCredentials, service
// "bedrock", region BedrockRegion; the signature is recomputed and anything
// else is refused with 403, so a test proves the caller signs correctly.
// Request.Model is the model id from the path; the body is a Messages
// request without "model" and "stream", as Bedrock takes it.
//
// Measured with the pinned CLI (CLAUDE_CODE_SKIP_BEDROCK_AUTH=1, the base
// URL's path prefix kept): one GET /inference-profiles?type=SYSTEM_DEFINED,
// then per model call a streaming invoke of
// us.anthropic.claude-sonnet-4-5-20250929-v1:0 (the colon unescaped, Accept:
// application/json, no auth header); after a 404 there it tries /invoke.
func NewBedrock(script Script) *Server { return start(script, true) }

// BedrockRegion is the only region the Bedrock mode accepts in a signature.
const BedrockRegion = "us-east-1"

// BedrockCredentials are the only AWS credentials the Bedrock mode accepts:
// test values, shaped like a Lambda role's temporary credentials.
func BedrockCredentials() aws.Credentials {
	return aws.Credentials{
		AccessKeyID:     "ASIAOVRLRDFAKE000001",
		SecretAccessKey: "anthropicfake/bedrock/test-secret-0000000000",
		SessionToken:    "anthropicfake-bedrock-session-token",
		Source:          "anthropicfake",
	}
}

func (s *Server) serveBedrock(w http.ResponseWriter, r *http.Request, body []byte) {
	if err := verifySigV4(r, body); err != nil {
		amzError(w, http.StatusForbidden, "InvalidSignatureException", err.Error())
		return
	}
	model, op := path.Split(strings.TrimPrefix(r.URL.Path, "/model/"))
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/inference-profiles":
		writeJSON(w, http.StatusOK, map[string]any{"inferenceProfileSummaries": []any{}})
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/model/") && len(model) > 1 &&
		(op == "invoke" || op == "invoke-with-response-stream"):
		s.answer(w, r, body, strings.TrimSuffix(model, "/"), op != "invoke")
	default:
		amzError(w, http.StatusNotFound, "UnknownOperationException", "Unknown operation: "+r.Method+" "+r.URL.Path)
	}
}

var bedrockErrorTypes = map[int]string{
	400: "ValidationException", 403: "AccessDeniedException", 404: "ResourceNotFoundException",
	429: "ThrottlingException", 503: "ServiceUnavailableException", 529: "ServiceUnavailableException",
}

// amzError answers like AWS: {"message": ...} and the type in a header.
func amzError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("x-amzn-ErrorType", typ)
	writeJSON(w, status, map[string]string{"message": msg})
}

// chunkFrame is one eventstream "chunk" event holding the event JSON.
func chunkFrame(_ string, data []byte) []byte {
	var buf bytes.Buffer
	err := eventstream.NewEncoder().Encode(&buf, eventstream.Message{
		Headers: eventstream.Headers{
			{Name: ":event-type", Value: eventstream.StringValue("chunk")},
			{Name: ":content-type", Value: eventstream.StringValue("application/json")},
			{Name: ":message-type", Value: eventstream.StringValue("event")},
		},
		Payload: mustJSON(map[string][]byte{"bytes": data}), // []byte marshals as base64
	})
	if err != nil {
		panic("anthropicfake: encode chunk: " + err.Error())
	}
	return buf.Bytes()
}

// verifySigV4 checks r's signature the way AWS does: it must be recent and
// be the one the SDK's signer computes with BedrockCredentials, for
// BedrockRegion and service "bedrock", over the same method, path, query,
// signed headers and body (the hash of the body received, whatever
// X-Amz-Content-Sha256 claims). Any other key, secret, token, scope or
// content changes the recomputed signature.
func verifySigV4(r *http.Request, body []byte) error {
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return errors.New("missing or malformed X-Amz-Date")
	}
	if time.Since(when).Abs() > 15*time.Minute { // the clock skew AWS allows
		return errors.New("signature expired")
	}
	sum := sha256.Sum256(body)
	// Sign a copy holding only what the client said it signed.
	auth := r.Header.Get("Authorization")
	_, signed, _ := strings.Cut(auth, "SignedHeaders=")
	signed, _, _ = strings.Cut(signed, ",")
	u := *r.URL
	u.Scheme, u.Host = "http", r.Host
	again := &http.Request{Method: r.Method, URL: &u, Host: r.Host, Header: http.Header{}}
	for _, name := range strings.Split(signed, ";") {
		switch name {
		case "host":
		case "content-length":
			again.ContentLength = int64(len(body))
		default:
			again.Header[http.CanonicalHeaderKey(name)] = r.Header.Values(name)
		}
	}
	if err := v4.NewSigner().SignHTTP(r.Context(), BedrockCredentials(), again, hex.EncodeToString(sum[:]), "bedrock", BedrockRegion, when); err != nil {
		return err
	}
	if !hmac.Equal([]byte(again.Header.Get("Authorization")), []byte(auth)) {
		return errors.New("the request signature we calculated does not match the signature you provided")
	}
	return nil
}
