// Package ssmfake serves the one SSM operation the backend uses,
// GetParameters, over loopback HTTP in the real AWS JSON 1.1 protocol. No SSM
// emulator runs offline, and tests must exercise the real SDK client
// (signing, retries, error decoding) rather than a mock of it.
//
// Point the SDK at it with AWS_ENDPOINT_URL_SSM=srv.URL, or with
// ssm.Options.BaseEndpoint.
package ssmfake

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"
)

// The SDK sends these; anything else is not a GetParameters call.
const (
	target      = "AmazonSSM.GetParameters"
	contentType = "application/x-amz-json-1.1"
	// GetParameters takes at most 10 names per call.
	maxNames = 10
)

// Request is what one GetParameters call asked for.
type Request struct {
	Names          []string
	WithDecryption bool
}

// Server is a loopback SSM, safe for concurrent use. Its URL is the
// endpoint to give the SDK, e.g. http://127.0.0.1:PORT.
type Server struct {
	*httptest.Server

	mu       sync.Mutex
	params   map[string]string
	failures []func(http.ResponseWriter) // the answers of the next calls
	requests []Request
}

// New starts a server holding params (full parameter name to value), all
// served as SecureString. Call Close when done.
func New(params map[string]string) *Server {
	s := &Server{params: maps.Clone(params)}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Throttle makes the next n calls fail the way SSM does when its rate limit
// is exceeded.
func (s *Server) Throttle(n int) {
	s.FailNext(n, http.StatusBadRequest, "ThrottlingException", "Rate exceeded")
}

// FailNext makes the next n calls fail with an AWS JSON error of the given
// HTTP status and type (for example 500 "InternalServerError").
func (s *Server) FailNext(n, status int, errType, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, func(w http.ResponseWriter) { writeError(w, status, errType, message) })
	}
}

// Calls returns how many GetParameters calls arrived, failed ones included.
func (s *Server) Calls() int { return len(s.Requests()) }

// Requests returns every GetParameters call received, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	// Request has exactly the wire fields of GetParametersInput.
	var in Request
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&in)
	switch {
	case r.Method != http.MethodPost || r.URL.Path != "/":
		writeError(w, http.StatusNotFound, "UnknownOperationException", "")
	case r.Header.Get("X-Amz-Target") != target:
		writeError(w, http.StatusBadRequest, "UnknownOperationException", "")
	case r.Header.Get("Content-Type") != contentType:
		writeError(w, http.StatusBadRequest, "SerializationException", "unexpected content type")
	case err != nil:
		writeError(w, http.StatusBadRequest, "SerializationException", err.Error())
	default:
		s.answer(w, in)
	}
}

func (s *Server) answer(w http.ResponseWriter, in Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, in)
	switch {
	case len(s.failures) > 0:
		fail := s.failures[0]
		s.failures = s.failures[1:]
		fail(w)
	case len(in.Names) == 0 || len(in.Names) > maxNames:
		writeError(w, http.StatusBadRequest, "ValidationException",
			"1 validation error detected: Value at 'names' failed to satisfy constraint: Member must have length between 1 and 10")
	default:
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("X-Amzn-Requestid", "00000000-0000-0000-0000-000000000000")
		json.NewEncoder(w).Encode(s.lookup(in))
	}
}

// lookup must be called with s.mu held.
func (s *Server) lookup(in Request) map[string]any {
	params, invalid := []map[string]any{}, []string{}
	for _, name := range in.Names {
		v, ok := s.params[name]
		if !ok {
			invalid = append(invalid, name)
			continue
		}
		if !in.WithDecryption {
			// Real SSM hands back KMS ciphertext; a caller that forgot
			// WithDecryption must not receive the plaintext here either.
			v = "AQICAH" + base64.StdEncoding.EncodeToString([]byte("ciphertext:"+name))
		}
		params = append(params, map[string]any{
			"ARN":              "arn:aws:ssm:us-east-1:000000000000:parameter/" + strings.TrimPrefix(name, "/"),
			"DataType":         "text",
			"LastModifiedDate": time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Unix(),
			"Name":             name,
			"Type":             "SecureString",
			"Value":            v,
			"Version":          1,
		})
	}
	return map[string]any{"Parameters": params, "InvalidParameters": invalid}
}

func writeError(w http.ResponseWriter, status int, errType, message string) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Amzn-Errortype", errType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": errType, "message": message})
}
