package main

// The config file holds what login was given: the API's address, its key,
// and the session token with its expiry, which a refresh replaces in
// place. It lives in the user's config folder (os.UserConfigDir), readable
// by the user alone: the token signs in as them.

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// configFile is the file's content.
type configFile struct {
	URL       string    `json:"url"`
	APIKey    string    `json:"apiKey,omitempty"`
	Token     string    `json:"token,omitempty"`
	ExpiresAt time.Time `json:"expiresAt,omitzero"` // the token's; zero when unknown
}

// configPath is where the config file lives.
func configPath(sys system) (string, error) {
	dir, err := sys.configDir()
	if err != nil {
		return "", fmt.Errorf("finding the config folder: %w", err)
	}
	return filepath.Join(dir, "ovrlrd", "config.json"), nil
}

// maxConfigBytes bounds what is read of the file: a few hundred bytes are
// expected.
const maxConfigBytes = 64 << 10

// loadConfig reads the file at path; a missing one is an empty config.
// One that does not decode is a *corruptConfig.
func loadConfig(path string) (configFile, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return configFile{}, nil
	}
	if err != nil {
		return configFile{}, fmt.Errorf("reading the config file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return configFile{}, fmt.Errorf("reading the config file: %w", err)
	}
	if len(b) > maxConfigBytes {
		return configFile{}, &corruptConfig{path, fmt.Errorf("it is larger than %d KiB", maxConfigBytes>>10)}
	}
	var c configFile
	if err := json.Unmarshal(b, &c); err != nil {
		return configFile{}, &corruptConfig{path, err}
	}
	return c, nil
}

// corruptConfig is a config file that is there but does not read as one
// (cut by a full disk, edited by hand): login writes it anew.
type corruptConfig struct {
	path string
	err  error
}

func (e *corruptConfig) Error() string {
	return fmt.Sprintf("the config file %s is damaged (%v): run ovrlrd login to write it anew", e.path, e.err)
}
func (e *corruptConfig) Unwrap() error { return e.err }

// saveConfig writes c to path atomically: into a temporary file of the
// same folder, then renamed over the old one, so a reader (or a crash)
// sees either file whole, never a token cut in half. The folder is 0700
// and the file 0600 (os.CreateTemp's mode) from their first byte.
func saveConfig(path string, c configFile) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("making the config folder: %w", err)
	}
	// The folder is ours alone: one made earlier with a looser mode is
	// closed too.
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("closing the config folder: %w", err)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".config-*.json")
	if err != nil {
		return fmt.Errorf("writing the config file: %w", err)
	}
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = replaceFile(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing the config file: %w", err)
	}
	return nil
}

// settings are what a command talks to the API with: each flag, else the
// config file's value.
type settings struct {
	url, apiKey, token string
	expiry             time.Time // the token's; zero when unknown
	// file is the config file the token came from, where a refreshed one
	// is kept; "" when it was given for this run (--token, $OVRLRD_TOKEN),
	// and then never refreshed (token.go).
	file   string
	stderr io.Writer // for warnings
	// waitLock waits for another run's lock on the file to go: pollLock,
	// or a test's signal.
	waitLock func(context.Context) error
}

// resolve reads the settings of c and the config file. The file's token
// goes only to the file's address: with another --url, the token must be
// given too.
func resolve(c common, sys system, stderr io.Writer) (settings, error) {
	path, err := configPath(sys)
	if err != nil {
		return settings{}, err
	}
	cfg, err := loadConfig(path)
	if err != nil {
		return settings{}, err
	}
	given, err := givenToken(c.token, sys)
	if err != nil {
		return settings{}, err
	}
	s := settings{url: cmp.Or(c.url, cfg.URL), apiKey: c.apiKey, stderr: stderr, waitLock: pollLock}
	if s.url == "" || (given == "" && cfg.Token == "") {
		return settings{}, errors.New("not signed in: run ovrlrd login --url URL --api-key KEY --token - first, or give --url and --token")
	}
	if s.url, err = checkURL(s.url); err != nil {
		return settings{}, err
	}
	fileURL, _ := checkURL(cfg.URL)
	if s.url == fileURL {
		// The file's key, as its token, goes to its own address only.
		s.apiKey = cmp.Or(s.apiKey, cfg.APIKey)
	}
	switch {
	case given != "":
		s.token, s.expiry = given, tokenExpiry(given)
	case s.url != fileURL:
		return settings{}, fmt.Errorf("--url %s is not the address signed in to (%s), whose token is not sent elsewhere: give that API's token too (--token - or $OVRLRD_TOKEN), or run ovrlrd login --url %s", s.url, cfg.URL, s.url)
	default:
		s.token, s.expiry, s.file = cfg.Token, cfg.ExpiresAt, path
		if s.expiry.IsZero() { // a file written by hand
			s.expiry = tokenExpiry(s.token)
		}
	}
	return s, nil
}

// checkURL returns the API's address without a trailing slash, refusing
// one the token should not be sent to: anything but https, or http to
// this machine itself (make dev).
func checkURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("the API's address %q is not an https URL such as https://api.example.com", raw)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return "", fmt.Errorf("the API's address %q is plain http to another machine: the session token would cross the network in clear (use https)", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func isLoopback(host string) bool {
	ip, err := netip.ParseAddr(host)
	return host == "localhost" || (err == nil && ip.IsLoopback())
}

// tokenExpiry is when a session token expires, read from its JWT's exp
// claim without verifying anything: it only says when to refresh, and the
// server checks the token itself. Zero when the token says nothing
// readable.
func tokenExpiry(token string) time.Time {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp float64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp <= 0 {
		return time.Time{}
	}
	return time.Unix(int64(claims.Exp), 0).UTC()
}

// loginCommand keeps the token, address and key in the config file.
func loginCommand(args []string, sys system, stdout, stderr io.Writer) error {
	var c common
	fs := flags("login", &c, stderr)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := positionals(fs, pos, 0, "no arguments"); err != nil {
		return err
	}
	token, err := givenToken(c.token, sys)
	if err != nil {
		return err
	}
	if token == "" {
		fmt.Fprintln(stderr, "ovrlrd login: --token is required (--token - reads it from the standard input)")
		return errUsage
	}
	path, err := configPath(sys)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(path)
	if bad, ok := errors.AsType[*corruptConfig](err); ok {
		// Nothing of it can be kept; login is the way out.
		fmt.Fprintf(stderr, "ovrlrd: warning: the config file %s is damaged (%s); it is written anew\n", printable(path), printable(bad.err.Error()))
		cfg, err = configFile{}, nil
	}
	if err != nil {
		return err
	}
	// An address or key given before stays unless replaced.
	cfg.URL, cfg.APIKey = cmp.Or(c.url, cfg.URL), cmp.Or(c.apiKey, cfg.APIKey)
	if cfg.URL == "" {
		return errors.New("--url is required: no earlier login names the API's address")
	}
	if cfg.URL, err = checkURL(cfg.URL); err != nil {
		return err
	}
	cfg.Token, cfg.ExpiresAt = token, tokenExpiry(token)
	if err := saveConfig(path, cfg); err != nil {
		return err
	}
	expires := "an unknown time"
	if !cfg.ExpiresAt.IsZero() {
		expires = cfg.ExpiresAt.Local().Format(time.DateTime)
	}
	fmt.Fprintf(stdout, "Signed in to %s; the token (expiring at %s, then refreshed) is kept in %s.\n", printable(cfg.URL), expires, printable(path))
	return nil
}
