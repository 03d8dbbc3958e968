package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/ssetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// Call sends one request as the app does and reads the answer's body, at
// most 64 KiB.
func (s *stack) Call(ctx context.Context, method, path, body, token string) (int, []byte, error) {
	resp, err := s.request(ctx, method, path, body, token)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, b, err
}

func (s *stack) request(ctx context.Context, method, path, body, token string) (*http.Response, error) {
	req, err := s.newRequest(ctx, method, path, body, token)
	if err != nil {
		return nil, err
	}
	return s.client.Do(req)
}

// newRequest is a request as the app sends one.
func (s *stack) newRequest(ctx context.Context, method, path, body, token string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.server.URL+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-API-Key", s.apiKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ovrlrd-"+s.name)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req, nil
}

// Turn is one streamed turn as the client saw it.
type Turn struct {
	Status                                 int
	Sent, FirstByte, FirstChunk, LastChunk time.Time
	End                                    time.Time // the body's end
	FirstStamp                             int64     // the CLI's UnixNano in the first stamped chunk
	Chunks                                 int
	Terminal                               ovrlrd.OutcomeKind
	Message                                string            // of an error terminal
	ConvID                                 string            // from the terminal event
	FirstID                                string            // the first event's id line
	onEvent                                func(data []byte) // StreamLive's, else nil
}

var chunkData = []byte(`{"type":"chunk","content":"`)

// Stream posts prompt to path and reads the SSE body to its end, keeping
// only counters, so that it adds little to the memory measured in this
// process. For each chunk whose content is a nanosecond timestamp it adds
// the delay (arrival minus the stamp) to lat, if not nil. atFirstByte, if
// not nil, runs once the first byte is in, before the rest is read.
func (s *stack) Stream(ctx context.Context, path, prompt, token string, lat *samples, atFirstByte func()) (Turn, error) {
	return s.stream(ctx, path, map[string]string{"message": prompt}, token, lat, atFirstByte, nil)
}

// StreamLive is Stream of a turn with live tool approvals ("approvals":
// "live"): onEvent sees each event's data (valid during the call only) as
// it arrives, before it is counted; the rest of the stream waits for it.
func (s *stack) StreamLive(ctx context.Context, path, prompt, token string, onEvent func(data []byte)) (Turn, error) {
	return s.stream(ctx, path, map[string]string{"message": prompt, "approvals": "live"}, token, nil, nil, onEvent)
}

func (s *stack) stream(ctx context.Context, path string, body map[string]string, token string, lat *samples, atFirstByte func(), onEvent func([]byte)) (Turn, error) {
	t := Turn{Sent: time.Now(), onEvent: onEvent}
	b, _ := json.Marshal(body)
	resp, err := s.request(ctx, http.MethodPost, path, string(b), token)
	if err != nil {
		return t, err
	}
	defer resp.Body.Close()
	if err := t.opened(resp, "POST "+path); err != nil {
		return t, err
	}
	br := bufio.NewReaderSize(resp.Body, 16<<10)
	if _, err := br.Peek(1); err != nil {
		return t, fmt.Errorf("stream ended before its first byte: %w", err)
	}
	t.FirstByte = time.Now()
	if atFirstByte != nil {
		atFirstByte()
	}
	return t, t.read(br, lat)
}

// Watch reattaches to conversation conv's turn as a client that lost its
// stream does (GET /chat/{id}/stream, Last-Event-ID lastID) and reads the
// SSE body to its end, as Stream does.
func (s *stack) Watch(ctx context.Context, conv, lastID, token string, lat *samples) (Turn, error) {
	t := Turn{Sent: time.Now()}
	path := "/chat/" + conv + "/stream"
	req, err := s.newRequest(ctx, http.MethodGet, path, "", token)
	if err != nil {
		return t, err
	}
	req.Header.Set("Last-Event-ID", lastID)
	resp, err := s.client.Do(req)
	if err != nil {
		return t, err
	}
	defer resp.Body.Close()
	if err := t.opened(resp, "GET "+path); err != nil {
		return t, err
	}
	br := bufio.NewReaderSize(resp.Body, 16<<10)
	if _, err := br.Peek(1); err != nil {
		return t, fmt.Errorf("stream ended before its first byte: %w", err)
	}
	t.FirstByte = time.Now()
	return t, t.read(br, lat)
}

// opened checks that resp is a stream's 200.
func (t *Turn) opened(resp *http.Response, what string) error {
	t.Status = resp.StatusCode
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return fmt.Errorf("%s: %d %.200s", what, resp.StatusCode, body)
	}
	return nil
}

// read reads an SSE body to its end.
func (t *Turn) read(body io.Reader, lat *samples) error {
	for r := ssetest.NewReader(body); ; {
		data, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if t.FirstID == "" {
			t.FirstID = r.ID() // "" (no allocation) until an event has one
		}
		if t.onEvent != nil {
			t.onEvent(data)
		}
		t.event(data, lat)
	}
	t.End = time.Now()
	if t.Terminal == "" {
		return errors.New("stream ended without a terminal event")
	}
	return nil
}

// event takes one event's data: a chunk is counted without decoding it, so
// the client's cost stays out of the relay's figures.
func (t *Turn) event(data []byte, lat *samples) {
	content, ok := bytes.CutPrefix(data, chunkData)
	if !ok {
		e, _ := ssetest.DecodeData(string(data))
		switch kind := ovrlrd.OutcomeKind(e.Type); kind {
		case ovrlrd.OutcomeComplete, ovrlrd.OutcomeNoResponse, ovrlrd.OutcomePermissionRequired, ovrlrd.OutcomeError:
			t.Terminal, t.Message, t.ConvID = kind, e.Message, e.ConversationID
		}
		return
	}
	now := time.Now()
	t.Chunks++
	if t.Chunks == 1 {
		t.FirstChunk = now
	}
	t.LastChunk = now
	// Only a plausible UnixNano value (19 digits) is a stamp.
	digits, _, _ := bytes.Cut(content, []byte(`"`))
	stamp, err := strconv.ParseInt(string(digits), 10, 64)
	if err != nil || len(digits) != 19 {
		return
	}
	if t.FirstStamp == 0 {
		t.FirstStamp = stamp
	}
	if lat != nil {
		lat.add(time.Duration(now.UnixNano() - stamp))
	}
}
