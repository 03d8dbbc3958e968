package push_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/apnsfake"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/push"
)

func collapseIDs(reqs []apnsfake.Request) []string {
	ids := make([]string, len(reqs))
	for i, q := range reqs {
		ids[i] = q.Header.Get("apns-collapse-id")
	}
	return ids
}

// Two pushes of one turn (a redelivered invocation) collapse into one on
// the phone; another turn's push does not replace it.
func TestCollapseIDIsPerTurn(t *testing.T) {
	r := newRig(t)
	r.device(t, ovrlrd.EnvSandbox)
	first, second := rand.Text(), rand.Text()
	m := push.Message{ConversationID: "c", Segments: []string{"hi"}, TurnID: first}
	r.n.Notify(context.Background(), r.user, m)
	r.n.Notify(context.Background(), r.user, m)
	m.TurnID = second
	r.n.Notify(context.Background(), r.user, m)
	ids := collapseIDs(r.apns.Requests())
	if len(ids) != 3 || ids[0] == "" || len(ids[0]) > 64 || ids[1] != ids[0] || ids[2] == "" || ids[2] == ids[0] {
		t.Fatalf("collapse ids %q", ids)
	}
	if strings.Contains(ids[0], first) {
		t.Fatalf("collapse id %q carries the turn id", ids[0])
	}
}

// APNs received the request but its answer came after the client's
// timeout: APNs may have delivered it, so it is not sent again.
func TestLateAnswerIsNotSentAgain(t *testing.T) {
	t.Cleanup(push.ShortenSend(time.Second))
	r := newRig(t)
	tok := r.device(t, ovrlrd.EnvSandbox)
	m := push.Message{ConversationID: "c", Segments: []string{"hi"}, TurnID: rand.Text()}
	// The first push opens the connection, so the timeout below runs only
	// while the stand-in holds the answer; it is kept long enough for a
	// loaded machine to write a request on an open connection.
	r.n.Notify(context.Background(), r.user, m)
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	r.apns.Answer(tok, apnsfake.Answer{Hold: hold}, apnsfake.Answer{Hold: hold}, apnsfake.Answer{Hold: hold})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.n.Notify(ctx, r.user, m)
	if err := r.apns.Wait(ctx, 2); err != nil {
		t.Fatalf("the held push never arrived: %v", err)
	}
	if n := len(r.apns.Requests()); n != 2 {
		t.Fatalf("%d requests; the held push was sent %d times", n, n-1)
	}
	if !strings.Contains(r.log.String(), "push: not retried") {
		t.Fatalf("log %s", r.log.String())
	}
}

// A 503 says APNs did not take the notification: the retry delivers it,
// as the same notification.
func TestUnavailableIsRetried(t *testing.T) {
	r := newRig(t)
	tok := r.device(t, ovrlrd.EnvSandbox)
	r.apns.Answer(tok, apnsfake.Answer{Status: 503, Reason: "ServiceUnavailable"})
	r.n.Notify(context.Background(), r.user, push.Message{ConversationID: "c", Segments: []string{"hi"}, TurnID: rand.Text()})
	ids := collapseIDs(r.apns.Requests())
	if len(ids) != 2 || ids[0] == "" || ids[1] != ids[0] {
		t.Fatalf("collapse ids of the attempts %q", ids)
	}
	if l := r.log.String(); strings.Contains(l, "push: gave up") || strings.Contains(l, "push: not retried") {
		t.Fatalf("log %s", l)
	}
}

// A refused connection never reached APNs: the next attempt dials again
// and delivers.
func TestRefusedConnectionIsRetried(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusing := closed.Addr().String()
	closed.Close()
	var dials atomic.Int32
	t.Cleanup(push.DialTLS(func(network, addr string, cfg *tls.Config) (net.Conn, error) {
		if dials.Add(1) == 1 {
			addr = refusing
		}
		return tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, network, addr, cfg)
	}))
	r := newRig(t)
	r.device(t, ovrlrd.EnvSandbox)
	r.n.Notify(context.Background(), r.user, push.Message{ConversationID: "c", Segments: []string{"hi"}, TurnID: rand.Text()})
	ids := collapseIDs(r.apns.Requests())
	if dials.Load() != 2 || len(ids) != 1 || ids[0] == "" {
		t.Fatalf("%d dials, collapse ids %q; log %s", dials.Load(), ids, r.log.String())
	}
	if strings.Contains(r.log.String(), "push: gave up") {
		t.Fatalf("log %s", r.log.String())
	}
}
