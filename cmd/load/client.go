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
	"sync"
	"time"
)

// client talks to the service as the app does, over one keep-alive pool.
type client struct {
	base   string
	apiKey string
	tr     *http.Transport
	http   *http.Client
}

func newClient(base, apiKey string, conns int) *client {
	tr := &http.Transport{
		MaxIdleConnsPerHost: conns,
		DisableCompression:  true,
		IdleConnTimeout:     30 * time.Second,
	}
	return &client{base: base, apiKey: apiKey, tr: tr, http: &http.Client{Transport: tr}}
}

// user is one signed-in user and its session token. Requests hold mu for
// reading while under way; a refresh holds it for writing, so no request
// ever carries a token older than the one before the latest rotation (the
// service would take that for a copied token).
type user struct {
	mu    sync.RWMutex
	token string

	convMu sync.Mutex
	convs  []string

	devMu   sync.Mutex
	devices []string // registered device tokens, at most maxDevices
}

const maxDevices = 16

func (u *user) addConv(id string) {
	if id == "" {
		return
	}
	u.convMu.Lock()
	defer u.convMu.Unlock()
	u.convs = append(u.convs, id)
}

func (u *user) conversations() []string {
	u.convMu.Lock()
	defer u.convMu.Unlock()
	return u.convs
}

func (c *client) request(ctx context.Context, method, path, body, token string) (*http.Request, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-API-Key", c.apiKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ovrlrd-load")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req, nil
}

// call sends one request and reads its answer: the body (at most 64 KiB)
// when keep is set or the status is not 2xx, else it is read and dropped,
// so the connection goes back to the pool.
func (c *client) call(ctx context.Context, method, path, body, token string, keep bool) (int, []byte, error) {
	req, err := c.request(ctx, method, path, body, token)
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.http.Do(req)
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

// streamResult is what one streamed turn looked like from the client.
type streamResult struct {
	status    int
	ttfb      time.Duration // from just before the request to the first body byte
	duration  time.Duration // from just before the request to the end of the body
	chunks    int
	terminal  string
	message   string // of an error terminal, or of a refusal
	convID    string // from the terminal event
	connError bool   // the transport failed (no answer, or a broken body)
}

var (
	chunkPrefix = []byte(`data: {"type":"chunk"`)
	typePrefix  = []byte(`data: {"type":"`)
	dataPrefix  = []byte("data: ")
)

// stream posts a turn and reads its SSE body to the end, line by line in one
// 16 KiB buffer, keeping only counters and the terminal event.
func (c *client) stream(ctx context.Context, path, prompt, token string) (streamResult, error) {
	var r streamResult
	b, _ := json.Marshal(map[string]string{"message": prompt})
	req, err := c.request(ctx, http.MethodPost, path, string(b), token)
	if err != nil {
		return r, err
	}
	req.Header.Set("Accept", "text/event-stream")
	sent := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		r.connError = true
		return r, err
	}
	defer resp.Body.Close()
	r.status = resp.StatusCode
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		r.message = string(body)
		r.duration = time.Since(sent)
		return r, fmt.Errorf("POST %s: %d %.200s", path, resp.StatusCode, body)
	}
	br := bufio.NewReaderSize(resp.Body, 16<<10)
	if _, err := br.Peek(1); err != nil {
		r.connError = true
		return r, fmt.Errorf("stream ended before its first byte: %w", err)
	}
	r.ttfb = time.Since(sent)
	for {
		line, err := br.ReadSlice('\n')
		for errors.Is(err, bufio.ErrBufferFull) { // a line longer than the buffer: not ours
			line = nil
			_, err = br.ReadSlice('\n')
		}
		if len(line) > 0 {
			r.line(line)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			r.connError = true
			return r, err
		}
	}
	r.duration = time.Since(sent)
	if r.terminal == "" {
		return r, errors.New("stream ended without a terminal event")
	}
	return r, nil
}

func (r *streamResult) line(line []byte) {
	if bytes.HasPrefix(line, chunkPrefix) {
		r.chunks++
		return
	}
	rest, ok := bytes.CutPrefix(line, typePrefix)
	if !ok {
		return
	}
	typ, _, _ := bytes.Cut(rest, []byte(`"`))
	switch string(typ) {
	case "complete", "no_response", "permission_required", "error":
		r.terminal = string(typ)
		var e struct {
			Message        string `json:"message"`
			ConversationID string `json:"conversationId"`
		}
		if json.Unmarshal(bytes.TrimSpace(line[len(dataPrefix):]), &e) == nil {
			r.message, r.convID = e.Message, e.ConversationID
		}
	}
}
