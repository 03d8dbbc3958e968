package main

// The server rotates a session token on each refresh and, once the
// rotation is more than 30 s old, takes the superseded token presented
// again as stolen and revokes the whole session (internal/auth). So a
// token is refreshed by one run at a time, and only the config file's:
// under a lock file beside it, with the file read again first, so that a
// run that finds another has refreshed it takes the new token rather than
// presenting the old one. A token given for one run (--token, stdin,
// $OVRLRD_TOKEN) may be in use elsewhere too, and is never refreshed.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"
)

// givenToken is the token given for this run: --token, or its value read
// from stdin for "-", else $OVRLRD_TOKEN; "" for none.
func givenToken(flag string, sys system) (string, error) {
	switch flag {
	case "":
		return strings.TrimSpace(sys.getenv("OVRLRD_TOKEN")), nil
	case "-":
	default:
		return flag, nil
	}
	if sys.stdin == nil {
		return "", errors.New("--token -: there is no standard input to read the token from")
	}
	line, err := bufio.NewReader(io.LimitReader(sys.stdin, maxConfigBytes)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("--token -: reading the standard input: %w", err)
	}
	if line = strings.TrimSpace(line); line == "" {
		return "", errors.New("--token -: the standard input holds no token")
	}
	return line, nil
}

// errExpired is a token given for this run that has lapsed.
var errExpired = errors.New("the session token given has expired: get a new one, or run ovrlrd login to keep one that is refreshed")

// rotator is POST /auth/refresh with token.
type rotator func(ctx context.Context, token string) (string, time.Time, error)

// renew refreshes token, the config file's, as one run at a time may:
// see the top of the file. A new token that cannot be saved is still
// used, with a warning: the old one is spent.
func (s *settings) renew(ctx context.Context, token string, rotate rotator) (string, time.Time, error) {
	unlock, err := lockFile(ctx, s.file+".lock", s.waitLock)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("locking the config file: %w", err)
	}
	defer unlock()
	cfg, err := loadConfig(s.file)
	if err != nil {
		return "", time.Time{}, err
	}
	if fileURL, _ := checkURL(cfg.URL); fileURL != s.url {
		// A login to another API since: the file is not this token's.
		newToken, expiry, err := rotate(ctx, token)
		if err == nil {
			s.warn("the refreshed session token is not kept: the config file now names %s", cfg.URL)
		}
		return newToken, expiry, err
	}
	if cfg.Token != "" && cfg.Token != token {
		expiry := cfg.ExpiresAt
		if expiry.IsZero() {
			expiry = tokenExpiry(cfg.Token)
		}
		if expiry.IsZero() || time.Until(expiry) >= refreshBefore {
			return cfg.Token, expiry, nil
		}
		token = cfg.Token // about to lapse too: refreshed below
	}
	newToken, expiry, err := rotate(ctx, token)
	if err != nil {
		return "", time.Time{}, err
	}
	cfg.Token, cfg.ExpiresAt = newToken, expiry
	if err := saveConfig(s.file, cfg); err != nil {
		s.warn("the refreshed session token could not be saved (%v): this run goes on with it, the next needs ovrlrd login", err)
	}
	return newToken, expiry, nil
}

func (s *settings) warn(format string, args ...any) {
	if s.stderr != nil {
		fmt.Fprintln(s.stderr, "ovrlrd: warning:", printable(fmt.Sprintf(format, args...)))
	}
}

// lockStale is the age past which a lock file was left by a run that
// died: a refresh holds it for one call (callTimeout) and a save.
const lockStale = time.Minute

// lockFile takes the lock file at path, made with O_EXCL, waiting with
// wait while another run holds it; unlock removes it.
func lockFile(ctx context.Context, path string, wait func(context.Context) error) (unlock func(), err error) {
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			f.Close()
			return func() { os.Remove(path) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		fi, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // just released
		}
		if err != nil {
			return nil, err
		}
		if time.Since(fi.ModTime()) > lockStale {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("removing a stale lock: %w", err)
			}
			continue
		}
		if err := wait(ctx); err != nil {
			return nil, err
		}
	}
}

// pollLock waits a moment, or until ctx is done.
func pollLock(ctx context.Context) error {
	t := time.NewTimer(100 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
