// Package apnsfake is a loopback stand-in of APNs: HTTP/2 over TLS, the
// provider API's paths, headers and answers. Its certificate is signed by a
// throwaway CA that a test trusts through SSL_CERT_FILE, so the client under
// test runs with its production TLS settings.
package apnsfake

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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
	Delay  time.Duration
	// Hold, when set, keeps the answer back until it is closed (or the
	// client drops the stream): a request received but answered too late.
	Hold <-chan struct{}
}

// Server is a running stand-in.
type Server struct {
	URL string // https://127.0.0.1:PORT

	srv *httptest.Server
	mu  sync.Mutex
	got []Request
	// queued answers per device token; when empty, 200.
	queue map[string][]Answer
	// arrived is closed, and replaced, at every received request.
	arrived chan struct{}
}

var ca struct {
	once sync.Once
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string
	err  error
}

// CAFile writes the stand-in's CA certificate to a file, once per process,
// and returns its path: set SSL_CERT_FILE to it before the process makes
// its first TLS connection (Go reads the system roots once).
func CAFile() (string, error) {
	ca.once.Do(func() {
		ca.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{CommonName: "apnsfake test CA"},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(24 * time.Hour),
			IsCA:                  true,
			KeyUsage:              x509.KeyUsageCertSign,
			BasicConstraintsValid: true,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ca.key.PublicKey, ca.key)
		if err != nil {
			ca.err = err
			return
		}
		ca.cert, _ = x509.ParseCertificate(der)
		dir, err := os.MkdirTemp("", "apnsfake")
		if err != nil {
			ca.err = err
			return
		}
		ca.file = filepath.Join(dir, "ca.pem")
		ca.err = os.WriteFile(ca.file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	})
	return ca.file, ca.err
}

// New starts a stand-in; CAFile must have been called (and trusted) first.
func New() (*Server, error) {
	if _, err := CAFile(); err != nil {
		return nil, err
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, err
	}
	s := &Server{queue: map[string][]Answer{}, arrived: make(chan struct{})}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.EnableHTTP2 = true
	s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	s.srv.StartTLS()
	s.URL = s.srv.URL
	return s, nil
}

// Close stops the stand-in.
func (s *Server) Close() { s.srv.Close() }

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
	return append([]Request(nil), s.got...)
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
	if a.Delay > 0 {
		select {
		case <-time.After(a.Delay):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("apns-id", "00000000-0000-0000-0000-000000000001")
	if a.Status == 0 || a.Status == http.StatusOK {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.Status)
	body := map[string]any{"reason": a.Reason}
	if a.Status == http.StatusGone {
		body["timestamp"] = time.Now().UnixMilli()
	}
	_ = json.NewEncoder(w).Encode(body)
}
