package sse_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdaurl"

	"github.com/ovrlrd/cloud/internal/devkit/ssetest"
	"github.com/ovrlrd/cloud/internal/sse"
)

// A client that stops reading without disconnecting (a phone suspended
// mid-stream) fails the write at its deadline instead of holding it, and
// the writer, forever. Writers that take no deadline (Lambda's streaming
// writer, a recorder) say so, for their caller to bound the wait itself.
func TestWriteToAStalledClientFailsAtTheDeadline(t *testing.T) {
	defer func(d time.Duration) { sse.WriteTimeout = d }(sse.WriteTimeout)
	sse.WriteTimeout = 200 * time.Millisecond
	type result struct {
		err       error
		deadlined bool
	}
	failed := make(chan result, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := sse.NewWriter(w)
		big := sse.Event{Type: sse.Chunk, Content: strings.Repeat("z", 64<<10)}
		var err error
		for err == nil {
			err = sw.Send(big)
		}
		failed <- result{err, sw.Deadlined()}
	}))
	t.Cleanup(srv.Close)
	conn := ssetest.DialStalled(t.Context(), t, srv.Listener.Addr().String())
	if _, err := conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	select {
	case got := <-failed:
		if !got.deadlined || !errors.Is(got.err, os.ErrDeadlineExceeded) {
			t.Fatalf("deadlined %v, write error %v; want the write deadline's error", got.deadlined, got.err)
		}
	case <-ctx.Done():
		t.Fatal("the write to a client that stopped reading never ended")
	}

	if sse.NewWriter(httptest.NewRecorder()).Deadlined() || sse.NewWriter(&recorder{}).Deadlined() {
		t.Fatal("a writer without deadlines claims to have them")
	}
	deadlined := true
	h := lambdaurl.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		deadlined = sse.NewWriter(w).Deadlined()
	}))
	resp, err := h(ctx, &events.LambdaFunctionURLRequest{
		RequestContext: events.LambdaFunctionURLRequestContext{HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{Method: "GET"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	if deadlined {
		t.Fatal("Lambda's streaming writer claims to take a write deadline")
	}
}
