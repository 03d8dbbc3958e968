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

// Client talks to the service as the app does, over one keep-alive pool.
// It keeps nothing of a stream but counters, so it adds little to the
// memory measured in this process.
type Client struct {
	base, apiKey, agent string
	HTTP                *http.Client
}

func (c *Client) request(ctx context.Context, method, path, body, token, accept string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-API-Key", c.apiKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", c.agent)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return c.HTTP.Do(req)
}

// Call sends one request. The body (at most 64 KiB) is returned when keep
// is set or the status is not 2xx; else it is read and dropped, so the
// connection goes back to the pool and the load makes little garbage.
func (c *Client) Call(ctx context.Context, method, path, body, token string, keep bool) (int, []byte, error) {
	resp, err := c.request(ctx, method, path, body, token, "")
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	if keep || resp.StatusCode/100 != 2 {
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return resp.StatusCode, b, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil, err
}

// Turn is one streamed turn as the client saw it.
type Turn struct {
	Status                                 int
	Sent, FirstByte, FirstChunk, LastChunk time.Time
	End                                    time.Time // the body's end
	FirstStamp                             int64     // the CLI's UnixNano in the first stamped chunk
	Chunks, Stamped                        int       // Stamped: chunks whose content was a timestamp
	Terminal                               ovrlrd.OutcomeKind
	Message                                string // of an error terminal
	ConvID                                 string // from the terminal event
}

var (
	chunkData = []byte(`{"type":"chunk","content":"`)
	typeData  = []byte(`{"type":"`)
)

// Stream posts prompt to path and reads the SSE body to its end. For each
// chunk whose content is a nanosecond timestamp it adds the delay (arrival
// minus the stamp) to lat, if not nil. atFirstByte, if not nil, runs once
// the first byte is in, before the rest is read.
func (c *Client) Stream(ctx context.Context, path, prompt, token string, lat *Histogram, atFirstByte func()) (Turn, error) {
	t := Turn{Sent: time.Now()}
	b, _ := json.Marshal(map[string]string{"message": prompt})
	resp, err := c.request(ctx, http.MethodPost, path, string(b), token, "text/event-stream")
	if err != nil {
		return t, err
	}
	defer resp.Body.Close()
	t.Status = resp.StatusCode
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return t, fmt.Errorf("POST %s: %d %.200s", path, resp.StatusCode, body)
	}
	br := bufio.NewReaderSize(resp.Body, 16<<10)
	if _, err := br.Peek(1); err != nil {
		return t, fmt.Errorf("stream ended before its first byte: %w", err)
	}
	t.FirstByte = time.Now()
	if atFirstByte != nil {
		atFirstByte()
	}
	for r := ssetest.NewReader(br); ; {
		data, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return t, err
		}
		t.event(data, lat)
	}
	t.End = time.Now()
	if t.Terminal == "" {
		return t, errors.New("stream ended without a terminal event")
	}
	return t, nil
}

// event takes one event's data: a chunk is counted without decoding it, so
// the client's cost stays out of the relay's figures.
func (t *Turn) event(data []byte, lat *Histogram) {
	if content, ok := bytes.CutPrefix(data, chunkData); ok {
		now := time.Now()
		t.Chunks++
		if t.Chunks == 1 {
			t.FirstChunk = now
		}
		t.LastChunk = now
		if ts, ok := parseStamp(content); ok {
			t.Stamped++
			if t.Stamped == 1 {
				t.FirstStamp = ts
			}
			if lat != nil {
				lat.Add(time.Duration(now.UnixNano() - ts))
			}
		}
		return
	}
	rest, ok := bytes.CutPrefix(data, typeData)
	if !ok {
		return
	}
	typ, _, _ := bytes.Cut(rest, []byte(`"`))
	switch kind := ovrlrd.OutcomeKind(typ); kind {
	case ovrlrd.OutcomeComplete, ovrlrd.OutcomeNoResponse, ovrlrd.OutcomePermissionRequired, ovrlrd.OutcomeError:
		var e struct{ Message, ConversationID string }
		_ = json.Unmarshal(data, &e)
		t.Terminal, t.Message, t.ConvID = kind, e.Message, e.ConversationID
	}
}

// parseStamp reads the digits of `1234"}`; ok only for a plausible
// UnixNano value (19 digits) followed by the closing quote.
func parseStamp(b []byte) (int64, bool) {
	digits, _, found := bytes.Cut(b, []byte(`"`))
	v, err := strconv.ParseInt(string(digits), 10, 64)
	return v, found && len(digits) == 19 && err == nil
}
