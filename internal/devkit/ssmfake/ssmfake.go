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
	"net/http"
	"net/http/httptest"
	"slices"
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

// Server is a loopback SSM. It is safe for concurrent use.
type Server struct {
	// URL is the endpoint to give the SDK, e.g. http://127.0.0.1:PORT.
	URL string

	srv *httptest.Server

	mu       sync.Mutex
	params   map[string]string
	failures []failure
	requests []Request
}

type failure struct {
	status  int
	errType string
	message string
}

// New starts a server holding params (full parameter name to value), all
// served as SecureString. Call Close when done.
func New(params map[string]string) *Server {
	s := &Server{params: make(map[string]string, len(params))}
	for k, v := range params {
		s.params[k] = v
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// Set adds or replaces a parameter.
func (s *Server) Set(name, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.params[name] = value
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
		s.failures = append(s.failures, failure{status, errType, message})
	}
}

// Calls returns how many GetParameters calls arrived, failed ones included.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

// Requests returns every GetParameters call received, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		out[i] = Request{Names: slices.Clone(r.Names), WithDecryption: r.WithDecryption}
	}
	return out
}

type parameter struct {
	ARN              string
	DataType         string
	LastModifiedDate float64
	Name             string
	Type             string
	Value            string
	Version          int64
}

type getParametersOutput struct {
	Parameters        []parameter
	InvalidParameters []string
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		writeError(w, http.StatusNotFound, "UnknownOperationException", "")
		return
	}
	if r.Header.Get("X-Amz-Target") != target {
		writeError(w, http.StatusBadRequest, "UnknownOperationException", "")
		return
	}
	if r.Header.Get("Content-Type") != contentType {
		writeError(w, http.StatusBadRequest, "SerializationException", "unexpected content type")
		return
	}
	// Request has exactly the wire fields of GetParametersInput.
	var in Request
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "SerializationException", err.Error())
		return
	}

	s.mu.Lock()
	s.requests = append(s.requests, in)
	if len(s.failures) > 0 {
		f := s.failures[0]
		s.failures = s.failures[1:]
		s.mu.Unlock()
		writeError(w, f.status, f.errType, f.message)
		return
	}
	if len(in.Names) == 0 || len(in.Names) > maxNames {
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, "ValidationException",
			"1 validation error detected: Value at 'names' failed to satisfy constraint: Member must have length between 1 and 10")
		return
	}
	out := s.lookup(in)
	s.mu.Unlock()

	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Amzn-Requestid", "00000000-0000-0000-0000-000000000000")
	_ = json.NewEncoder(w).Encode(out)
}

// lookup must be called with s.mu held.
func (s *Server) lookup(in Request) getParametersOutput {
	out := getParametersOutput{Parameters: []parameter{}, InvalidParameters: []string{}}
	modified := float64(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Unix())
	for _, name := range in.Names {
		v, ok := s.params[name]
		if !ok {
			out.InvalidParameters = append(out.InvalidParameters, name)
			continue
		}
		if !in.WithDecryption {
			// Real SSM hands back KMS ciphertext; a caller that forgot
			// WithDecryption must not receive the plaintext here either.
			v = "AQICAH" + base64.StdEncoding.EncodeToString([]byte("ciphertext:"+name))
		}
		out.Parameters = append(out.Parameters, parameter{
			ARN:              "arn:aws:ssm:us-east-1:000000000000:parameter" + slashed(name),
			DataType:         "text",
			LastModifiedDate: modified,
			Name:             name,
			Type:             "SecureString",
			Value:            v,
			Version:          1,
		})
	}
	return out
}

func slashed(name string) string {
	if len(name) > 0 && name[0] == '/' {
		return name
	}
	return "/" + name
}

func writeError(w http.ResponseWriter, status int, errType, message string) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Amzn-Errortype", errType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": errType, "message": message})
}
