package repo

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// errRefused marks a connection the guard refused, so callers can tell
// "not allowed" from "cannot be reached".
var errRefused = errors.New("repo: address not allowed")

// policyKey carries the per-call Remote.AllowLoopback to the dialer.
type policyKey struct{}

func withPolicy(ctx context.Context, allowLoopback bool) context.Context {
	return context.WithValue(ctx, policyKey{}, allowLoopback)
}

// sharedAddrs is the carrier-grade NAT range (RFC 6598); netip does not
// count it as private, but inside AWS it is as internal as 10/8.
var sharedAddrs = netip.MustParsePrefix("100.64.0.0/10")

// allowed reports whether a connection to ip may be made. Loopback is the
// only internal range the local stage opens: private and link-local stay
// refused there too, since 169.254.169.254 and fd00:ec2::254 are the
// instance metadata service.
func allowed(ip netip.Addr, allowLoopback bool) bool {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid(), ip.IsUnspecified(), ip.IsMulticast(), ip.IsInterfaceLocalMulticast(),
		ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast(), ip.IsPrivate(), sharedAddrs.Contains(ip):
		return false
	case ip.IsLoopback():
		return allowLoopback
	}
	return true
}

// control runs after DNS resolution and before connect, on the address
// actually dialled, so a name that resolves to a public address for a
// check and to a private one for the connection (DNS rebinding) is still
// refused. A context without a policy gets the strict one: the guard fails
// closed for any other go-git user in the process.
func control(ctx context.Context, _, address string, _ syscall.RawConn) error {
	allowLoopback, _ := ctx.Value(policyKey{}).(bool)
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !allowed(ap.Addr(), allowLoopback) {
		return errRefused
	}
	return nil
}

var installOnce sync.Once

// install replaces go-git's https transport, once, with one whose every
// connection passes the guard. go-git v5 takes no HTTP client per call
// (Clone/List/Push options only carry CABundle, proxy and TLS flags), and
// client.InstallProtocol is process-wide, so the per-call policy travels in
// the request context, which net/http hands to the dialer. go-git clones
// this transport per session when a CABundle is given, keeping DialContext.
//
// Connections are pooled per transport; a pooled one was dialled under an
// earlier call's policy. That is sound because the policy only differs by
// loopback, which one process (one stage) allows or refuses throughout.
func install() {
	installOnce.Do(func() {
		dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, ControlContext: control}
		tr := &http.Transport{
			Proxy:                 nil, // a proxy would be the address dialled, hiding the real one from the guard
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          10,
			IdleConnTimeout:       60 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 60 * time.Second,
			ExpectContinueTimeout: time.Second,
		}
		client.InstallProtocol("https", githttp.NewClient(&http.Client{Transport: tr}))
	})
}
