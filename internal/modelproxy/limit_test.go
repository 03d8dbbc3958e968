package modelproxy

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// logged is a slog handler that hands tests the messages containing want,
// so they can wait for the proxy to reach a point without sleeping.
type logged struct {
	want string
	ch   chan string
}

func (l logged) Enabled(context.Context, slog.Level) bool { return true }
func (l logged) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l logged) WithGroup(string) slog.Handler            { return l }
func (l logged) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, l.want) {
		l.ch <- r.Message
	}
	return nil
}

// waitLog waits for the next such message; the bound only turns a
// regression's hang into a failure.
func waitLog(t *testing.T, ch <-chan string, want string) {
	t.Helper()
	select {
	case got := <-ch:
		if !strings.Contains(got, want) {
			t.Fatalf("logged %q, want %q", got, want)
		}
	case <-time.After(time.Minute):
		t.Fatalf("never logged %q", want)
	}
}

// TestConcurrencyCap: with maxInFlight requests of a session held open at
// the upstream, the next waits in the proxy without reaching the upstream;
// one that gives up waiting (its client cancels) never does; when a held
// request finishes, the waiting one gets its slot and goes through. A
// request still waiting when the session closes gets 401.
func TestConcurrencyCap(t *testing.T) {
	arrived := make(chan struct{}, 2*maxInFlight)
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		sseAnswer("claude-haiku-4-5", 10, 2)(w, r)
	})
	events := make(chan string, 16)
	p := newProxy(t, Options{Provider: ovrlrd.Anthropic, Upstream: up.URL, Credential: realKey,
		Log: slog.New(logged{want: "wait", ch: events})})
	s := open(t, p)
	post := func(ctx context.Context) <-chan int {
		done := make(chan int, 1)
		go func() {
			req, _ := http.NewRequestWithContext(ctx, "POST", s.BaseURL()+"/v1/messages", strings.NewReader(msgBody))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				done <- 0
				return
			}
			io.Copy(io.Discard, resp.Body) // all of it, so all of it is metered
			resp.Body.Close()
			done <- resp.StatusCode
		}()
		return done
	}

	var held []<-chan int
	for range maxInFlight {
		held = append(held, post(context.Background()))
		<-arrived
	}
	next := post(context.Background())
	waitLog(t, events, "waiting")
	select {
	case <-arrived:
		t.Fatalf("request %d reached the upstream while %d were in flight", maxInFlight+1, maxInFlight)
	default:
	}
	ctx, cancel := context.WithCancel(context.Background())
	gone := post(ctx)
	waitLog(t, events, "waiting")
	cancel()
	waitLog(t, events, "gave up waiting")
	if status := <-gone; status != 0 {
		t.Errorf("cancelled request answered %d", status)
	}

	release <- struct{}{} // one held request finishes...
	<-arrived             // ...and the waiting one takes its slot
	for range maxInFlight {
		release <- struct{}{}
	}
	for i, h := range append(held, next) {
		if status := <-h; status != 200 {
			t.Errorf("request %d: status %d", i, status)
		}
	}
	if n := len(up.seen()); n != maxInFlight+1 {
		t.Errorf("upstream saw %d requests, want %d", n, maxInFlight+1)
	}
	if u := s.Usage(); u.InputTokens != 10*(maxInFlight+1) {
		t.Errorf("usage = %+v, want %d finished requests", u, maxInFlight+1)
	}

	// The slots are free again; fill them, and close the session on a waiter.
	held = held[:0]
	for range maxInFlight {
		held = append(held, post(context.Background()))
		<-arrived
	}
	last := post(context.Background())
	waitLog(t, events, "waiting")
	s.Close()
	if status := <-last; status != http.StatusUnauthorized {
		t.Errorf("waiting when the session closed: status %d, want 401", status)
	}
	for _, h := range held {
		<-h
	}
}
