package push

import (
	"crypto/tls"
	"net"
	"time"

	"github.com/sideshow/apns2"
)

// Summary is the body of an approval's push.
var Summary = summary

// Shorten sets the retry backoff for a test and returns a restore func.
func Shorten(b time.Duration) func() {
	old := backoff
	backoff = b
	return func() { backoff = old }
}

// ShortenSend sets the timeout of one request for the Notifiers built
// after it, and returns a restore func.
func ShortenSend(d time.Duration) func() {
	old := sendTimeout
	sendTimeout = d
	return func() { sendTimeout = old }
}

// DialTLS makes the Notifiers built after it dial APNs through dial (apns2
// takes its dialer when a client is built), and returns a restore func.
func DialTLS(dial func(network, addr string, cfg *tls.Config) (net.Conn, error)) func() {
	old := apns2.DialTLS
	apns2.DialTLS = dial
	return func() { apns2.DialTLS = old }
}
