package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// How long each call may take. An import also reads and parses the
// transcript on the server; an upload carries up to 100 MB from a desk's
// connection (at 200 kB/s, about eight minutes).
const (
	callTimeout   = 15 * time.Second
	importTimeout = 60 * time.Second
	uploadTimeout = 10 * time.Minute
)

// refreshBefore is how long before its expiry the token is refreshed, as
// the app does: a call never starts with a token about to lapse.
const refreshBefore = 300 * time.Second

// maxAnswerBytes bounds what is read of an answer: the API's are small.
const maxAnswerBytes = 1 << 20

// apiError is an answer other than 2xx, with the API's own message.
type apiError struct {
	Status  int
	Message string
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status) }

// client calls the API as the app does: the API key, the session token
// (refreshed before it lapses) and a JSON content type on every request.
type client struct {
	http   *http.Client
	base   string
	apiKey string
	token  string
	expiry time.Time // zero when unknown: never refreshed then
	// keep saves a refreshed token: the old one no longer works once the
	// server has rotated it.
	keep func(token string, expiry time.Time) error
	now  func() time.Time
}

func newClient(s *settings) *client {
	return &client{
		http: &http.Client{
			// The token goes to the API's address and nowhere else: a
			// redirect is answered as it is, an error.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		base: s.url, apiKey: s.apiKey, token: s.token, expiry: s.expiry,
		keep: s.keep, now: time.Now,
	}
}

// call sends body (JSON, or nil for none) to path with a fresh token, and
// decodes a 2xx answer into out (unless nil).
func (c *client) call(ctx context.Context, method, path string, timeout time.Duration, body []byte, out any) error {
	if err := c.refresh(ctx); err != nil {
		return err
	}
	return c.send(ctx, method, path, timeout, body, out)
}

// refresh replaces the token, as POST /auth/refresh does, when it lapses
// within refreshBefore (or has lapsed: the server still takes it for a
// while), and keeps the new one.
func (c *client) refresh(ctx context.Context) error {
	now := c.now()
	if c.expiry.IsZero() || c.expiry.Sub(now) >= refreshBefore {
		return nil
	}
	var g struct {
		SessionToken string `json:"sessionToken"`
		ExpiresIn    int64  `json:"expiresIn"`
	}
	if err := c.send(ctx, http.MethodPost, "/auth/refresh", callTimeout, nil, &g); err != nil {
		return fmt.Errorf("refreshing the session token: %w", err)
	}
	if g.SessionToken == "" || g.ExpiresIn <= 0 {
		return errors.New("refreshing the session token: the answer holds no token")
	}
	// Counted from before the request: the token may lapse earlier than
	// said, never later.
	c.token, c.expiry = g.SessionToken, now.Add(time.Duration(g.ExpiresIn)*time.Second)
	if err := c.keep(c.token, c.expiry); err != nil {
		return fmt.Errorf("keeping the refreshed session token: %w", err)
	}
	return nil
}

// send is one request with the current token.
func (c *client) send(ctx context.Context, method, path string, timeout time.Duration, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if c.apiKey != "" {
		req.Header.Set("X-API-Key", c.apiKey)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ovrlrd-cli")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, bare(err))
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, bare(err))
	}
	if resp.StatusCode/100 != 2 {
		return answerError(resp.StatusCode, answer)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(answer, out); err != nil {
		return fmt.Errorf("%s %s: the answer is not the JSON expected: %w", method, path, err)
	}
	return nil
}

// answerError is the API's {"error": "..."}, or the status's own text when
// the body is not that (a proxy's page).
func answerError(status int, body []byte) error {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || strings.TrimSpace(e.Error) == "" {
		e.Error = http.StatusText(status)
	}
	return &apiError{Status: status, Message: e.Error}
}

// bare is a request's error without the URL net/http wraps it in: the
// address is said by the caller, and a presigned upload's URL is a
// credential.
func bare(err error) error {
	if u, ok := errors.AsType[*url.Error](err); ok {
		return u.Err
	}
	return err
}
