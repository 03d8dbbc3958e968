package app_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/claude"
	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/devkit/ssetest"
	"github.com/ovrlrd/cloud/internal/sse"
)

// A phone suspended mid-stream stops reading without disconnecting. Its
// turn goes on without it: it ends and saves its answer, and it sees a
// cancel, while the client's connection stays open and full.
func TestStalledClient(t *testing.T) {
	t.Cleanup(func() { claudetest.AssertNoRunProcesses(t, claude.RunMarkerVar) })
	restore := sse.WriteTimeout
	t.Cleanup(func() { sse.WriteTimeout = restore })
	sse.WriteTimeout = 300 * time.Millisecond
	s := newStack(t, "RATE_LIMIT_READ", "10000/1m") // savedAnswer polls
	srv := httptest.NewUnstartedServer(s.app.Handler())
	stalled := &fullListener{Listener: srv.Listener, accepted: make(chan *fullConn, 2)}
	srv.Listener = stalled
	srv.Start()
	t.Cleanup(srv.Close)
	tok, uid := s.signIn(t, uniqueSub("stalled"), "")

	t.Run("the turn ends and is saved", func(t *testing.T) {
		ctx := hangGuard(t)
		const n = 10000 // texts: far more than the socket, the gateway and the outbox hold
		conv := newConversation(t, uid).ID
		stalled.stream(t, ctx, srv.Listener.Addr().String(), "/chat/"+conv+"/stream",
			claudetest.Script("flood", "n", n), tok)
		answer := s.savedAnswer(t, ctx, tok, conv)
		if len(answer) != 19*n || !regexp.MustCompile(`^(\d{19})+$`).MatchString(answer) {
			t.Fatalf("saved %d bytes, want the %d texts the CLI wrote", len(answer), n)
		}
	})

	t.Run("a cancel is seen", func(t *testing.T) {
		ctx := hangGuard(t)
		conv := newConversation(t, uid).ID
		// Texts for the next hours: only the cancel ends this turn.
		stalled.stream(t, ctx, srv.Listener.Addr().String(), "/chat/"+conv+"/stream",
			claudetest.Script("rate", "n", 50_000_000, "rate", 5000), tok)
		// The connection is full: the turn's events pile up behind it
		// from now on, and the cancel comes while they do.
		if r := s.call(t, "POST", "/chat/"+conv+"/cancel", "", tok); r.status != 200 || r.body != `{"success":true}` {
			t.Fatalf("cancel: %d %s", r.status, r.body)
		}
		if answer := s.savedAnswer(t, ctx, tok, conv); !regexp.MustCompile(`^(\d{19})+$`).MatchString(answer) {
			t.Fatalf("saved %q, want the texts streamed until the cancel", answer)
		}
	})
}

// hangGuard bounds a test that hangs when the turn waits on its client.
func hangGuard(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// savedAnswer waits until the conversation holds the turn's answer (its
// opening message, the turn's prompt, the answer), which the turn saves
// as it ends, and returns it.
func (s *stack) savedAnswer(t *testing.T, ctx context.Context, tok, conv string) string {
	t.Helper()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		_, msgs, _ := appDetail(t, s.call(t, "GET", "/chat/"+conv, "", tok))
		if len(msgs) >= 3 {
			if len(msgs) != 3 || msgs[2]["role"] != "assistant" {
				t.Fatalf("messages %v", msgs)
			}
			return msgs[2]["content"].(string)
		}
		select {
		case <-ctx.Done():
			t.Fatal("the turn of the stalled client never ended")
		case <-tick.C:
		}
	}
}

// fullListener accepts connections with a small send buffer, each of which
// reports when the kernel first refuses its bytes: its peer stopped
// reading and the buffers between them are full.
type fullListener struct {
	net.Listener
	accepted chan *fullConn
}

func (l *fullListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := c.(*net.TCPConn)
	raw, err := tc.SyscallConn()
	if err == nil {
		err = tc.SetWriteBuffer(16 << 10)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	fc := &fullConn{TCPConn: tc, raw: raw, full: make(chan struct{})}
	l.accepted <- fc
	return fc, nil
}

type fullConn struct {
	*net.TCPConn
	raw  syscall.RawConn
	full chan struct{} // closed when a write first finds the send buffer full
	once sync.Once
}

func (c *fullConn) Write(p []byte) (int, error) {
	var (
		n    int
		werr error
	)
	err := c.raw.Write(func(fd uintptr) bool {
		for n < len(p) {
			m, err := syscall.Write(int(fd), p[n:])
			switch {
			case errors.Is(err, syscall.EINTR):
				continue
			case errors.Is(err, syscall.EAGAIN):
				c.once.Do(func() { close(c.full) })
				return false // wait until the peer takes bytes, if ever
			case err != nil:
				werr = err
				return true
			}
			n += m
		}
		return true
	})
	if err == nil {
		err = werr
	}
	return n, err
}

// stream sends a streaming turn from a client with a tiny receive window
// that never reads its answer, and returns once the server's connection to
// it is full. The test's end closes the client.
func (l *fullListener) stream(t *testing.T, ctx context.Context, addr, path, message, tok string) {
	t.Helper()
	body := `{"message":` + jsonString(message) + `}`
	remember(tok)
	rememberJSON(body, true)
	conn := ssetest.DialStalled(ctx, t, addr)
	req := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nX-API-Key: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nAccept: text/event-stream\r\nContent-Length: %d\r\n\r\n%s",
		path, addr, apiKey, tok, len(body), body)
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	var fc *fullConn
	select {
	case fc = <-l.accepted:
	case <-ctx.Done():
		t.Fatal("the server never accepted the stalled client")
	}
	select {
	case <-fc.full:
	case <-ctx.Done():
		t.Fatal("the connection to the stalled client never filled")
	}
}
