package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// A stream is read as the app reads it: chunks counted, stamped ones
// timed, an event longer than the client's buffer passed over, the
// terminal event decoded; the request carries the key and the token.
func TestStreamReadsATurn(t *testing.T) {
	stamp := time.Now().UnixNano()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/chat/c1/stream" || r.Header.Get("X-API-Key") != "key" || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "refused", http.StatusForbidden)
			return
		}
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "data: {\"type\":\"ping\"}\n\n")
		fmt.Fprintf(w, "data: {\"type\":\"chunk\",\"content\":\"%d\"}\n\n", stamp)
		fmt.Fprintf(w, "data: {\"type\":\"chunk\",\"content\":%q}\n\n", strings.Repeat("x", 40<<10))
		fmt.Fprintf(w, "data: {\"type\":\"chunk\",\"content\":\"%d\"}\n\n", stamp+1)
		fmt.Fprintf(w, "data: {\"type\":\"error\",\"message\":%q,\"conversationId\":\"c1\"}\n\n", body)
	}))
	defer srv.Close()
	c := &stack{server: srv, apiKey: "key", client: srv.Client()}
	var lat samples
	firstByte := false
	turn, err := c.Stream(context.Background(), "/chat/c1/stream", "hello", "tok", &lat, func() { firstByte = true })
	if err != nil {
		t.Fatal(err)
	}
	if !firstByte || turn.Status != 200 || turn.Chunks != 3 || turn.FirstStamp != stamp || len(lat.ds) != 2 {
		t.Errorf("turn %+v, %d delays, first byte seen %v", turn, len(lat.ds), firstByte)
	}
	if turn.Terminal != ovrlrd.OutcomeError || turn.Message != `{"message":"hello"}` || turn.ConvID != "c1" {
		t.Errorf("terminal %q %q %q", turn.Terminal, turn.Message, turn.ConvID)
	}
	if !turn.Sent.Before(turn.FirstByte) || turn.LastChunk.After(turn.End) {
		t.Errorf("times out of order: %+v", turn)
	}

	refused, err := c.Stream(context.Background(), "/chat/c2/stream", "hello", "tok", nil, nil)
	if err == nil || refused.Status != http.StatusForbidden || !strings.Contains(err.Error(), "refused") {
		t.Errorf("refused turn: %+v, %v", refused, err)
	}
}

// A live turn asks for live approvals, and its reader sees every event as
// it arrives, the counters still kept.
func TestStreamLiveShowsEachEvent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "data: {\"type\":\"permission_request\",\"requestId\":%q}\n\n", body)
		fmt.Fprintf(w, "data: {\"type\":\"chunk\",\"content\":\"x\"}\n\n")
		fmt.Fprintf(w, "data: {\"type\":\"complete\",\"conversationId\":\"c1\"}\n\n")
	}))
	defer srv.Close()
	c := &stack{server: srv, apiKey: "key", client: srv.Client()}
	var seen []string
	turn, err := c.StreamLive(context.Background(), "/chat/c1/stream", "hi", "tok", func(data []byte) { seen = append(seen, string(data)) })
	if err != nil || turn.Chunks != 1 || turn.Terminal != ovrlrd.OutcomeComplete {
		t.Fatalf("turn %+v, %v", turn, err)
	}
	want := []string{`{"type":"permission_request","requestId":"{\"approvals\":\"live\",\"message\":\"hi\"}"}`,
		`{"type":"chunk","content":"x"}`, `{"type":"complete","conversationId":"c1"}`}
	if !slices.Equal(seen, want) {
		t.Errorf("seen %q, want %q", seen, want)
	}
}
