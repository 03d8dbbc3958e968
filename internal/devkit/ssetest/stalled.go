package ssetest

import (
	"cmp"
	"context"
	"net"
	"syscall"
	"testing"
)

// DialStalled connects to addr with a 4 KB receive window, for a client
// that then never reads: the server's socket fills within a few kilobytes,
// as it does for a phone suspended mid-stream. The test's end closes it.
func DialStalled(ctx context.Context, t testing.TB, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		cerr := c.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return cmp.Or(cerr, err)
	}}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
