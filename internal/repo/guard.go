package repo

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
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

// refused are the special-purpose ranges netip has no predicate for.
var refused = prefixes(
	"0.0.0.0/8",                                         // "this network"
	"100.64.0.0/10",                                     // carrier-grade NAT: inside AWS as internal as 10/8
	"192.0.0.0/24",                                      // IETF protocol assignments
	"192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", // documentation
	"198.18.0.0/15", // benchmarking
	"240.0.0.0/4",   // reserved, and the broadcast address
	// IPv6 forms that carry an IPv4 address a gateway or relay would
	// reach: the address inside is not checked, so the whole form is not
	// allowed. (IPv4-mapped ::ffff:0:0/96 is unmapped and checked instead.)
	"::/96",                          // IPv4-compatible
	"64:ff9b::/96", "64:ff9b:1::/48", // NAT64
	"2002::/16", // 6to4
	"2001::/32", // Teredo
	"fec0::/10", // site-local: deprecated, yet a network may still route it internally
)

func prefixes(s ...string) []netip.Prefix {
	ps := make([]netip.Prefix, len(s))
	for i, p := range s {
		ps[i] = netip.MustParsePrefix(p)
	}
	return ps
}

// allowed reports whether a connection to ip may be made. Loopback is the
// only internal range the local stage opens: private and link-local stay
// refused there too, since 169.254.169.254 and fd00:ec2::254 are the
// instance metadata service.
func allowed(ip netip.Addr, allowLoopback bool) bool {
	ip = ip.Unmap()
	if ip.IsLoopback() { // before ::/96, which holds ::1
		return allowLoopback
	}
	// Not global unicast: unspecified, multicast, link-local, broadcast.
	if !ip.IsGlobalUnicast() || ip.IsPrivate() {
		return false
	}
	for _, p := range refused {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// httpsPort is the only port the deployed stages dial. The local stage,
// whose git server listens on a random loopback port, dials any.
const httpsPort = 443

// control runs after DNS resolution and before connect, on the address
// actually dialled, so a name that resolves to a public address for a
// check and to a private one for the connection (DNS rebinding) is still
// refused. The port is checked there too, so a URL or a redirect naming
// another one is refused alike; and since every other port is refused
// before a connection is tried, the errors cannot tell a user which ports
// of a host are open. A context without a policy gets the strict one: the
// guard fails closed for any other go-git user in the process.
func control(ctx context.Context, _, address string, _ syscall.RawConn) error {
	allowLoopback, _ := ctx.Value(policyKey{}).(bool)
	ap, err := netip.ParseAddrPort(address)
	switch {
	case err != nil, !allowed(ap.Addr(), allowLoopback):
		return errRefused
	case !allowLoopback && ap.Port() != httpsPort:
		return errRefused
	}
	return nil
}

// guarded is go-git's https transport for the whole process. go-git v5
// takes no HTTP client per call (its options carry only CABundle, proxy
// and TLS flags) and client.InstallProtocol is process-wide, so the
// per-call policy travels in the request context, which net/http hands to
// the dialer. With a CABundle go-git clones this transport per session,
// keeping DialContext.
//
// Keep-alives are off: the policy is checked when a connection is dialled,
// and a pooled connection would carry one call's policy into the next. A
// git operation makes only a few requests.
var guarded = &http.Transport{
	Proxy:                 nil, // a proxy would be the address dialled, hiding the real one from the guard
	DialContext:           (&net.Dialer{Timeout: 10 * time.Second, ControlContext: control}).DialContext,
	DisableKeepAlives:     true,
	TLSHandshakeTimeout:   10 * time.Second,
	ResponseHeaderTimeout: 60 * time.Second,
	ExpectContinueTimeout: time.Second,
}

var guardedClient = githttp.NewClient(&http.Client{Transport: guarded})

func init() { client.InstallProtocol("https", guardedClient) }

// errReplaced: something else in the process installed its own https
// transport, which would connect without the guard.
var errReplaced = errors.New("repo: go-git's https transport was replaced; refusing to connect unguarded")

func checkTransport() error {
	if client.Protocols["https"] != guardedClient {
		return errReplaced
	}
	return nil
}
