package anthropicfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
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

// maxBedrockBody bounds a request body; Bedrock's own limit is far lower.
const maxBedrockBody = 64 << 20

func (s *Server) serveBedrock(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBedrockBody))
	if err != nil {
		writeBedrockError(w, http.StatusBadRequest, "cannot read body")
		return
	}
	if err := verifySigV4(r, body); err != nil {
		w.Header().Set("x-amzn-ErrorType", "InvalidSignatureException")
		writeJSON(w, http.StatusForbidden, map[string]string{"message": err.Error()})
		return
	}
	path := r.URL.Path
	switch {
	case r.Method == http.MethodGet && path == "/inference-profiles":
		writeJSON(w, http.StatusOK, map[string]any{"inferenceProfileSummaries": []any{}})
		return
	case r.Method == http.MethodPost && strings.HasPrefix(path, "/model/"):
		rest := strings.TrimPrefix(path, "/model/")
		i := strings.LastIndexByte(rest, '/')
		if i > 0 && (rest[i+1:] == "invoke" || rest[i+1:] == "invoke-with-response-stream") {
			s.invoke(w, r, rest[:i], rest[i+1:] != "invoke", body)
			return
		}
	}
	w.Header().Set("x-amzn-ErrorType", "UnknownOperationException")
	writeJSON(w, http.StatusNotFound, map[string]string{"message": "Unknown operation: " + r.Method + " " + path})
}

func (s *Server) invoke(w http.ResponseWriter, r *http.Request, model string, stream bool, body []byte) {
	var wr wireRequest
	if err := json.Unmarshal(body, &wr); err != nil {
		writeBedrockError(w, http.StatusBadRequest, "Malformed input request: "+err.Error())
		return
	}
	req := newRequest(r, body, wr)
	req.Model = model
	req.Stream = stream
	s.answer(w, r, req)
}

// streamBedrock answers with an application/vnd.amazon.eventstream body.
func (s *Server) streamBedrock(w http.ResponseWriter, r *http.Request, m message, reply Reply) {
	h := w.Header()
	h.Set("Content-Type", "application/vnd.amazon.eventstream")
	h.Set("x-amzn-bedrock-content-type", "application/json")
	h.Set("x-amzn-RequestId", randomID())
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := eventstream.NewEncoder()
	send := func(event string, data any) bool {
		if event == "message_stop" {
			data = map[string]any{
				"type": "message_stop",
				"amazon-bedrock-invocationMetrics": map[string]int{
					"inputTokenCount":   m.Usage.InputTokens,
					"outputTokenCount":  m.Usage.OutputTokens,
					"invocationLatency": 1,
					"firstByteLatency":  1,
				},
			}
		}
		frame, err := chunkFrame(enc, data)
		if err != nil {
			panic(fmt.Sprintf("anthropicfake: encode %s: %v", event, err))
		}
		if _, err := w.Write(frame); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return r.Context().Err() == nil
	}
	s.events(r, m, reply, send, false)
}

// chunkFrame is one eventstream "chunk" event holding the event JSON.
func chunkFrame(enc *eventstream.Encoder, event any) ([]byte, error) {
	raw, err := json.Marshal(event)
	if err != nil {
		return nil, err
	}
	payload, err := json.Marshal(map[string][]byte{"bytes": raw}) // []byte marshals as base64
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	err = enc.Encode(&buf, eventstream.Message{
		Headers: eventstream.Headers{
			{Name: ":event-type", Value: eventstream.StringValue("chunk")},
			{Name: ":content-type", Value: eventstream.StringValue("application/json")},
			{Name: ":message-type", Value: eventstream.StringValue("event")},
		},
		Payload: payload,
	})
	return buf.Bytes(), err
}

// writeBedrockError answers like Bedrock: {"message": ...} and the error
// type in x-amzn-ErrorType.
func writeBedrockError(w http.ResponseWriter, status int, msg string) {
	typ := "InternalServerException"
	switch status {
	case http.StatusBadRequest:
		typ = "ValidationException"
	case http.StatusForbidden:
		typ = "AccessDeniedException"
	case http.StatusNotFound:
		typ = "ResourceNotFoundException"
	case http.StatusTooManyRequests:
		typ = "ThrottlingException"
	case http.StatusServiceUnavailable, 529:
		typ = "ServiceUnavailableException"
	}
	if msg == "" {
		msg = typ
	}
	w.Header().Set("x-amzn-ErrorType", typ)
	writeJSON(w, status, map[string]string{"message": msg})
}
