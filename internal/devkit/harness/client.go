package harness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/ssetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// Client talks to the service as the app does, over one keep-alive pool.
// It reads a stream as it arrives (ssetest.Reader) and keeps nothing of it
// but counters, so it adds little to the memory measured in this process.
type Client struct {
	base, apiKey, agent string
	Transport           *http.Transport
	HTTP                *http.Client
}

// NewClient is a client of the service at base, keeping up to conns idle
// connections; agent names it in the User-Agent.
func NewClient(base, apiKey, agent string, conns int) *Client {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, DisableCompression: true, IdleConnTimeout: 30 * time.Second}
	return &Client{base: base, apiKey: apiKey, agent: agent, Transport: tr, HTTP: &http.Client{Transport: tr}}
}

func (c *Client) request(ctx context.Context, method, path, body, token string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-API-Key", c.apiKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", c.agent)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req, nil
}

// Call sends one request and reads its answer: the body (at most 64 KiB)
// when keep is set or the status is not 2xx, else it is read and dropped,
// so the connection goes back to the pool.
func (c *Client) Call(ctx context.Context, method, path, body, token string, keep bool) (int, []byte, error) {
	req, err := c.request(ctx, method, path, body, token)
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.HTTP.Do(req)
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
	Status     int
	Sent       time.Time // just before the request was sent
	FirstByte  time.Time
	FirstChunk time.Time
	LastChunk  time.Time
	End        time.Time // the body's end
	FirstStamp int64     // the CLI's timestamp in the first stamped chunk (UnixNano)
	Chunks     int
	Stamped    int                // chunks whose content was a timestamp
	Terminal   ovrlrd.OutcomeKind // the terminal event's type
	Message    string             // of an error terminal, or the body of a refusal
	ConvID     string             // from the terminal event
	ConnError  bool               // the transport failed: no answer, or a broken body
}

var (
	chunkData = []byte(`{"type":"chunk","content":"`)
	typeData  = []byte(`{"type":"`)
)

// Stream posts prompt to path (POST /chat/stream or /chat/{id}/stream)
// and reads the SSE body to its end. For each chunk whose content is a
// nanosecond timestamp it adds the delay (arrival minus the stamp) to lat,
// if not nil. atFirstByte, if not nil, runs once the first byte is in,
// before the rest is read.
func (c *Client) Stream(ctx context.Context, path, prompt, token string, lat *Histogram, atFirstByte func()) (Turn, error) {
	var t Turn
	b, _ := json.Marshal(map[string]string{"message": prompt})
	req, err := c.request(ctx, http.MethodPost, path, string(b), token)
	if err != nil {
		return t, err
	}
	req.Header.Set("Accept", "text/event-stream")
	t.Sent = time.Now()
	resp, err := c.HTTP.Do(req)
	if err != nil {
		t.ConnError = true
		return t, err
	}
	defer resp.Body.Close()
	t.Status = resp.StatusCode
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		t.Message, t.End = string(body), time.Now()
		return t, fmt.Errorf("POST %s: %d %.200s", path, resp.StatusCode, body)
	}
	br := bufio.NewReaderSize(resp.Body, 16<<10)
	if _, err := br.Peek(1); err != nil {
		t.ConnError = true
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
			t.ConnError = true
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

// event takes one event's data: a chunk is counted without decoding it.
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
		t.Terminal = kind
		var e struct {
			Message        string `json:"message"`
			ConversationID string `json:"conversationId"`
		}
		if json.Unmarshal(data, &e) == nil {
			t.Message, t.ConvID = e.Message, e.ConversationID
		}
	}
}

// parseStamp reads the digits of `1234"}`; ok only for a plausible
// UnixNano value (19 digits) followed by the closing quote.
func parseStamp(b []byte) (int64, bool) {
	var v int64
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		v = v*10 + int64(b[i]-'0')
	}
	if i != 19 || i >= len(b) || b[i] != '"' {
		return 0, false
	}
	return v, true
}
