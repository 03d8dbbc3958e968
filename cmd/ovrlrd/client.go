package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
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

// apiError is an answer other than 2xx, with the API's own message and
// what the user can do about it.
type apiError struct {
	Status  int
	Message string
	Hint    string // "" for none
}

func (e *apiError) Error() string {
	if e.Hint != "" {
		return fmt.Sprintf("%s (HTTP %d); %s", e.Message, e.Status, e.Hint)
	}
	return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status)
}

// client calls the API as the app does: the API key, the session token
// (refreshed before it lapses) and a JSON content type on every request.
type client struct {
	http   *http.Client
	base   string
	apiKey string
	token  string
	expiry time.Time // zero when unknown: never refreshed then
	// renew refreshes the config file's token (settings.renew); nil for
	// one given for this run, which is never refreshed.
	renew func(ctx context.Context, token string, rotate rotator) (string, time.Time, error)
	now   func() time.Time
}

func newClient(s *settings) *client {
	c := &client{
		http: &http.Client{
			// The token goes to the API's address and nowhere else: a
			// redirect is answered as it is, an error.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		base: s.url, apiKey: s.apiKey, token: s.token, expiry: s.expiry,
		now: time.Now,
	}
	if s.file != "" {
		c.renew = s.renew
	}
	return c
}

// call sends body (JSON, or nil for none) to path with a fresh token, and
// decodes a 2xx answer into out (unless nil).
func (c *client) call(ctx context.Context, method, path string, timeout time.Duration, body []byte, out any) error {
	if err := c.refresh(ctx); err != nil {
		return err
	}
	return c.send(ctx, c.token, method, path, timeout, body, out)
}

// refresh replaces the config file's token when it lapses within
// refreshBefore (or has lapsed: the server still takes it for a while).
// A token given for this run is used as it is until it lapses.
func (c *client) refresh(ctx context.Context) error {
	now := c.now()
	if c.expiry.IsZero() || c.expiry.Sub(now) >= refreshBefore {
		return nil
	}
	if c.renew == nil {
		if now.Before(c.expiry) {
			return nil
		}
		return errExpired
	}
	token, expiry, err := c.renew(ctx, c.token, c.rotate)
	if err != nil {
		return fmt.Errorf("refreshing the session token: %w", err)
	}
	c.token, c.expiry = token, expiry
	return nil
}

// rotate is POST /auth/refresh with token: the new token and its expiry.
func (c *client) rotate(ctx context.Context, token string) (string, time.Time, error) {
	now := c.now()
	var g struct {
		SessionToken string `json:"sessionToken"`
		ExpiresIn    int64  `json:"expiresIn"`
	}
	if err := c.send(ctx, token, http.MethodPost, "/auth/refresh", callTimeout, nil, &g); err != nil {
		return "", time.Time{}, err
	}
	if g.SessionToken == "" || g.ExpiresIn <= 0 {
		return "", time.Time{}, errors.New("the answer holds no token")
	}
	// Counted from before the request: the token may lapse earlier than
	// said, never later.
	return g.SessionToken, now.Add(time.Duration(g.ExpiresIn) * time.Second), nil
}

// send is one request with the current token.
func (c *client) send(ctx context.Context, token, method, path string, timeout time.Duration, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if c.apiKey != "" {
		req.Header.Set("X-API-Key", c.apiKey)
	}
	req.Header.Set("Authorization", "Bearer "+token)
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
		return answerError(resp.StatusCode, resp.Header, answer, c.now())
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(answer, out); err != nil {
		return fmt.Errorf("%s %s: the answer is not the JSON expected: %w", method, path, err)
	}
	return nil
}

// answerError is the API's {"error": "..."}, or API Gateway's own
// {"message": "..."}, else the status's text (a proxy's page), with a
// hint for the answers the user can act on.
func answerError(status int, header http.Header, body []byte, now time.Time) error {
	var e struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(body, &e)
	msg := strings.TrimSpace(cmp.Or(strings.TrimSpace(e.Error), e.Message))
	if msg == "" {
		msg = http.StatusText(status)
	}
	err := &apiError{Status: status, Message: oneLine(msg, 300)}
	switch status {
	case http.StatusUnauthorized:
		err.Hint = "run ovrlrd login with a new session token"
	case http.StatusTooManyRequests:
		err.Hint = "try again later"
		if when := retryAfter(header.Get("Retry-After"), now); !when.IsZero() {
			err.Hint = "try again after " + when.Local().Format(time.DateTime)
		}
	}
	return err
}

// retryAfter is when a Retry-After header (seconds, or an HTTP date) says
// to try again; zero when it says nothing readable.
func retryAfter(v string, now time.Time) time.Time {
	if v = strings.TrimSpace(v); v == "" {
		return time.Time{}
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return now.Add(time.Duration(n) * time.Second).Truncate(time.Second)
	}
	if t, err := http.ParseTime(v); err == nil {
		return t
	}
	return time.Time{}
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
