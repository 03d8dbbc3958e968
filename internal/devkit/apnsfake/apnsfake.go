// Package apnsfake is a loopback stand-in of APNs: HTTP/2 over TLS, the
// provider API's paths, headers and answers. Its self-signed certificate is
// one that a test trusts through SSL_CERT_FILE, so the client under test
// runs with its production TLS settings.
package apnsfake

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Request is one notification the stand-in received.
type Request struct {
	Token   string      // the device token from the path
	Header  http.Header // apns-topic, apns-push-type, authorization, ...
	Payload map[string]any
	Raw     []byte
}

// Answer is a reply: a status and, for errors, APNs's reason.
type Answer struct {
	Status int
	Reason string
	// Hold, when set, keeps the answer back until it is closed (or the
	// client drops the stream): a request received but answered too late.
	Hold <-chan struct{}
}

// Server is a running stand-in, at its URL (https://127.0.0.1:PORT).
type Server struct {
	*httptest.Server
	mu  sync.Mutex
	got []Request
	// queued answers per device token; when empty, 200.
	queue map[string][]Answer
	// arrived is closed, and replaced, at every received request.
	arrived chan struct{}
}

// CAFile writes the stand-in's certificate to a file, once per process,
// and returns its path: set SSL_CERT_FILE to it before the process makes
// its first TLS connection (Go reads the system roots once). The stand-in
// serves httptest's built-in certificate, which is its own CA and names
// 127.0.0.1, so trusting it as a root lets a client verify the server.
var CAFile = sync.OnceValues(func() (string, error) {
	probe := httptest.NewUnstartedServer(nil)
	probe.StartTLS()
	der := probe.Certificate().Raw
	probe.Close()
	f, err := os.CreateTemp("", "apnsfake-*.pem")
	if err != nil {
		return "", err
	}
	defer f.Close()
	return f.Name(), pem.Encode(f, &pem.Block{Type: "CERTIFICATE", Bytes: der})
})

// New starts a stand-in; CAFile must have been called (and trusted) first.
func New() (*Server, error) {
	if _, err := CAFile(); err != nil {
		return nil, err
	}
	s := &Server{queue: map[string][]Answer{}, arrived: make(chan struct{})}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.EnableHTTP2 = true
	s.StartTLS()
	return s, nil
}

// Answer queues answers for a device token, used in order.
func (s *Server) Answer(token string, answers ...Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue[token] = append(s.queue[token], answers...)
}

// Requests returns what was received.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// Wait returns once n requests have been received, or ctx is done.
func (s *Server) Wait(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		got, arrived := len(s.got), s.arrived
		s.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-arrived:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.URL.Path, "/3/device/")
	if !ok || r.Method != http.MethodPost || r.ProtoMajor != 2 {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 4096+1))
	req := Request{Token: tok, Header: r.Header.Clone(), Raw: raw}
	_ = json.Unmarshal(raw, &req.Payload)
	s.mu.Lock()
	s.got = append(s.got, req)
	close(s.arrived)
	s.arrived = make(chan struct{})
	var a Answer
	if q := s.queue[tok]; len(q) > 0 {
		a, s.queue[tok] = q[0], q[1:]
	}
	s.mu.Unlock()
	if a.Hold != nil {
		select {
		case <-a.Hold:
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("apns-id", "00000000-0000-0000-0000-000000000001")
	if a.Status == 0 || a.Status == http.StatusOK {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.Status)
	body := map[string]any{"reason": a.Reason}
	if a.Status == http.StatusGone {
		body["timestamp"] = time.Now().UnixMilli()
	}
	json.NewEncoder(w).Encode(body)
}
