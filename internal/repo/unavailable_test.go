package repo

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

const unavailable = "The repository's host did not answer. Please try again."

// host is a TLS server answering every request with h, and a Remote that
// trusts it.
func host(t *testing.T, h http.HandlerFunc) Remote {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	return Remote{
		URL: srv.URL + "/demo.git", Token: token, AllowLoopback: true,
		CABundle: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}),
	}
}

// A git host answering 5xx is down for now; the user's input is not at
// fault.
func TestHostErrorsAreUnavailable(t *testing.T) {
	_, good := start(t)
	c := checkout(t, good, "main", "ovrlrd/a")
	for _, code := range []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable} {
		r := host(t, func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "down", code)
		})
		_, err := Check(t.Context(), r, "")
		wantErr(t, err, ovrlrd.EUNAVAILABLE, unavailable)
		if !strings.Contains(err.Error(), fmt.Sprintf("HTTP status %d", code)) {
			t.Errorf("%d: %v does not keep the status", code, err)
		}
		gitDir := filepath.Join(t.TempDir(), "git")
		_, err = Fetch(t.Context(), r, gitDir, "main", 1<<20)
		wantErr(t, err, ovrlrd.EUNAVAILABLE, unavailable)
		if _, err := os.Stat(gitDir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%d: failed fetch left %s behind: %v", code, gitDir, err)
		}
		wantErr(t, Push(t.Context(), r, c.gitDir, "ovrlrd/a"), ovrlrd.EUNAVAILABLE, unavailable)
	}
}

// After the ref advertisement go-git wraps a request's failure in a
// *plumbing.UnexpectedError, which has no Unwrap: the 5xx must still be
// seen through it.
func TestHostErrorAfterTheAdvertisementIsUnavailable(t *testing.T) {
	srv, good := start(t)
	c := checkout(t, good, "main", "ovrlrd/a")
	origin, err := url.Parse(srv.URL("demo"))
	if err != nil {
		t.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite:   func(p *httputil.ProxyRequest) { p.SetURL(&url.URL{Scheme: origin.Scheme, Host: origin.Host}) },
		Transport: srv.Client().Transport,
	}
	posted := make(chan struct{}, 2)
	r := host(t, func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodGet {
			proxy.ServeHTTP(w, req)
			return
		}
		posted <- struct{}{}
		http.Error(w, "down", http.StatusServiceUnavailable)
	})
	if got, err := Check(t.Context(), r, "main"); err != nil || got != "main" {
		t.Fatalf("Check through the proxy = %q, %v", got, err)
	}
	_, err = Fetch(t.Context(), r, filepath.Join(t.TempDir(), "git"), "main", 1<<20)
	wantErr(t, err, ovrlrd.EUNAVAILABLE, unavailable)
	<-posted
	wantErr(t, Push(t.Context(), r, c.gitDir, "ovrlrd/a"), ovrlrd.EUNAVAILABLE, unavailable)
	<-posted
}

// A host that does not answer before the caller's deadline is unavailable.
func TestTimeoutIsUnavailable(t *testing.T) {
	_, good := start(t)
	c := checkout(t, good, "main", "ovrlrd/a")
	r := host(t, func(_ http.ResponseWriter, req *http.Request) {
		<-req.Context().Done() // the client gave up and closed the connection
	})
	for name, call := range map[string]func(context.Context) error{
		"Check": func(ctx context.Context) error { _, err := Check(ctx, r, ""); return err },
		"Fetch": func(ctx context.Context) error {
			_, err := Fetch(ctx, r, filepath.Join(t.TempDir(), "git"), "main", 1<<20)
			return err
		},
		"Push": func(ctx context.Context) error { return Push(ctx, r, c.gitDir, "ovrlrd/a") },
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		err := call(ctx)
		cancel()
		wantErr(t, err, ovrlrd.EUNAVAILABLE, unavailable)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: %v does not keep its kind", name, err)
		}
	}
}

// A refused connection to an allowed address is the host being down; with
// the address not allowed, nothing is dialled at all.
func TestRefusedConnectionIsUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r := Remote{URL: "https://" + addr + "/demo.git", Token: token, AllowLoopback: true}
	_, err = Check(t.Context(), r, "")
	wantErr(t, err, ovrlrd.EUNAVAILABLE, unavailable)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("%v does not keep the dial's error", err)
	}
	r.AllowLoopback = false
	_, err = Check(t.Context(), r, "")
	wantErr(t, err, ovrlrd.EINVALID, "The repository's address is not allowed.")
}

// userError sorts what the user must fix from what may pass, through every
// wrapper go-git and net/http put around a cause.
func TestUserError(t *testing.T) {
	dial := func(err error) error {
		return &url.Error{Op: "Get", URL: "https://git.example/demo.git/info/refs", Err: &net.OpError{Op: "dial", Net: "tcp", Err: err}}
	}
	later := func(err error) error { return plumbing.NewUnexpectedError(err) } // a request after the first
	for _, c := range []struct {
		name      string
		err       error
		code, msg string
	}{
		{"no such host", dial(&net.DNSError{Err: "no such host", Name: "nowhere.example", IsNotFound: true}),
			ovrlrd.EINVALID, "The repository's host was not found."},
		{"DNS timeout", dial(&net.DNSError{Err: "i/o timeout", Name: "git.example", IsTimeout: true}),
			ovrlrd.EUNAVAILABLE, unavailable},
		{"DNS server failure", dial(&net.DNSError{Err: "server misbehaving", Name: "git.example", IsTemporary: true}),
			ovrlrd.EUNAVAILABLE, unavailable},
		{"deadline", &url.Error{Op: "Get", URL: "https://git.example/", Err: context.DeadlineExceeded},
			ovrlrd.EUNAVAILABLE, unavailable},
		{"deadline later", later(&url.Error{Op: "Post", URL: "https://git.example/", Err: context.DeadlineExceeded}),
			ovrlrd.EUNAVAILABLE, unavailable},
		{"dial timeout", dial(os.ErrDeadlineExceeded), ovrlrd.EUNAVAILABLE, unavailable},
		{"refused", dial(os.NewSyscallError("connect", syscall.ECONNREFUSED)), ovrlrd.EUNAVAILABLE, unavailable},
		{"reset later", later(&url.Error{Op: "Post", URL: "https://git.example/", Err: &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}}),
			ovrlrd.EUNAVAILABLE, unavailable},
		{"unroutable", dial(os.NewSyscallError("connect", syscall.ENETUNREACH)), ovrlrd.EUNAVAILABLE, unavailable},
		{"guard", dial(errRefused), ovrlrd.EINVALID, "The repository's address is not allowed."},
		{"guard later", later(dial(errRefused)), ovrlrd.EINVALID, "The repository's address is not allowed."},
		{"unknown authority", &url.Error{Op: "Get", URL: "https://git.example/", Err: &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}},
			ovrlrd.EINVALID, "The repository's certificate is not trusted."},
		{"another host's certificate", &url.Error{Op: "Get", URL: "https://git.example/", Err: x509.HostnameError{Certificate: &x509.Certificate{}, Host: "git.example"}},
			ovrlrd.EINVALID, "The repository's certificate is not trusted."},
		{"expired", &url.Error{Op: "Get", URL: "https://git.example/", Err: x509.CertificateInvalidError{Reason: x509.Expired}},
			ovrlrd.EINVALID, "The repository's certificate is not trusted."},
		{"anything else", errors.New("malformed advertisement"), ovrlrd.EINVALID, "The repository cannot be reached."},
	} {
		err := userError(c.err, "read")
		if ovrlrd.ErrorCode(err) != c.code || ovrlrd.ErrorMessage(err) != c.msg {
			t.Errorf("%s: userError = %v; want %s %q", c.name, err, c.code, c.msg)
		}
	}
}
