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
	"strings"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/harness"
)

// client talks to the service as the app does. Its streams are parsed as
// they arrive, line by line in one 16 KiB buffer, and nothing of a body is
// kept but counters and a fixed-size histogram, so the client adds little to
// the RSS measured in this process.
type client struct {
	base   string
	apiKey string
	token  string
	http   *http.Client
}

func newClient(base, apiKey string) *client {
	return &client{base: base, apiKey: apiKey, http: &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: 64,
		DisableCompression:  true,
	}}}
}

func (c *client) request(ctx context.Context, method, path string, body string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-API-Key", c.apiKey)
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// streamResult is what one streamed turn looked like from the client.
type streamResult struct {
	sent       time.Time // just before the request was sent
	headers    time.Time // response headers received
	firstByte  time.Time // first body byte received
	firstChunk time.Time // first chunk event parsed
	lastChunk  time.Time // last chunk event parsed
	firstStamp int64     // the CLI's timestamp in the first chunk (UnixNano)
	chunks     int
	stamped    int // chunks whose content was a timestamp
	terminal   string
	message    string // of an error terminal
}

var (
	dataPrefix  = []byte("data: ")
	chunkPrefix = []byte(`data: {"type":"chunk","content":"`)
	typePrefix  = []byte(`data: {"type":"`)
)

// stream posts a turn on conversation conv and reads the SSE body to its
// end. For each chunk whose content is a nanosecond timestamp it adds the
// delay (now minus the timestamp) to lat, if lat is not nil.
func (c *client) stream(ctx context.Context, conv, prompt string, lat *harness.Histogram) (streamResult, error) {
	var r streamResult
	b, _ := json.Marshal(map[string]string{"message": prompt})
	req, err := c.request(ctx, http.MethodPost, "/chat/"+conv+"/stream", string(b))
	if err != nil {
		return r, err
	}
	req.Header.Set("Accept", "text/event-stream")
	r.sent = time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		return r, err
	}
	r.headers = time.Now()
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return r, fmt.Errorf("POST /chat/%s/stream: %d %s", conv, resp.StatusCode, body)
	}
	br := bufio.NewReaderSize(resp.Body, 16<<10)
	if _, err := br.Peek(1); err != nil {
		return r, fmt.Errorf("stream ended before its first byte: %w", err)
	}
	r.firstByte = time.Now()
	if err := r.read(br, lat); err != nil {
		return r, err
	}
	if r.terminal == "" {
		return r, errors.New("stream ended without a terminal event")
	}
	return r, nil
}

// read takes the rest of an SSE body, line by line.
func (r *streamResult) read(br *bufio.Reader, lat *harness.Histogram) error {
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// An event longer than the buffer (not one of ours): skip it.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			continue
		}
		if len(line) > 0 {
			r.line(line, lat)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// line takes one line of the SSE body.
func (r *streamResult) line(line []byte, lat *harness.Histogram) {
	if bytes.HasPrefix(line, chunkPrefix) {
		now := time.Now()
		r.chunks++
		if r.chunks == 1 {
			r.firstChunk = now
		}
		r.lastChunk = now
		if ts, ok := parseStamp(line[len(chunkPrefix):]); ok {
			r.stamped++
			if r.stamped == 1 {
				r.firstStamp = ts
			}
			if lat != nil {
				lat.Add(time.Duration(now.UnixNano() - ts))
			}
		}
		return
	}
	if !bytes.HasPrefix(line, typePrefix) {
		return
	}
	rest := line[len(typePrefix):]
	typ, _, _ := bytes.Cut(rest, []byte(`"`))
	switch string(typ) {
	case "complete", "no_response", "permission_required", "error":
		r.terminal = string(typ)
		var e struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(bytes.TrimSpace(line[len(dataPrefix):]), &e) == nil {
			r.message = e.Message
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
