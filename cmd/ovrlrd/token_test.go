package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAPI answers POST /auth/refresh with a new token, new-1, new-2...,
// valid a day, and anything else with {}; it keeps each request's method,
// path and token.
type fakeAPI struct {
	*httptest.Server
	mu        sync.Mutex
	calls     []string
	onRefresh func() // run as a refresh is answered
}

func newFakeAPI(t *testing.T) *fakeAPI {
	a := &fakeAPI{}
	refreshes := 0
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.calls = append(a.calls, r.Method+" "+r.URL.Path+" "+strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		if r.URL.Path != "/auth/refresh" {
			io.WriteString(w, `{}`)
			return
		}
		if a.onRefresh != nil {
			a.onRefresh()
		}
		refreshes++
		fmt.Fprintf(w, `{"sessionToken":"new-%d","expiresIn":86400}`, refreshes)
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *fakeAPI) got() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return strings.Join(a.calls, "|")
}

// expiringIn is a token that lapses in d.
func expiringIn(d time.Duration) string {
	return jwtWith(fmt.Sprintf(`{"sub":"u","exp":%d}`, time.Now().Add(d).Unix()))
}

func (d *desk) login(t *testing.T, url, token string) {
	t.Helper()
	if r := d.run(t, "login", "--url", url, "--token", token); r.code != 0 {
		t.Fatalf("login: %+v", r)
	}
}

func (d *desk) settings(t *testing.T, c common, stderr io.Writer) settings {
	t.Helper()
	s, err := resolve(c, d.system(), stderr)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (d *desk) lockPath() string { return filepath.Join(d.config, "ovrlrd", "config.json.lock") }

// A token given for one run is never refreshed: refreshing it would
// present it again once the server has rotated it, as reuse. It is used
// while it lasts, then refused here with what to do.
func TestGivenTokenIsNotRefreshed(t *testing.T) {
	api := newFakeAPI(t)
	soon := expiringIn(time.Minute)
	c := newClient(&settings{url: api.URL, token: soon, expiry: tokenExpiry(soon)})
	if err := c.call(t.Context(), "GET", "/chat", callTimeout, nil, nil); err != nil || api.got() != "GET /chat "+soon {
		t.Errorf("calls %q, %v", api.got(), err)
	}
	gone := expiringIn(-time.Minute)
	c = newClient(&settings{url: api.URL, token: gone, expiry: tokenExpiry(gone)})
	if err := c.call(t.Context(), "GET", "/chat", callTimeout, nil, nil); !errors.Is(err, errExpired) || !strings.Contains(err.Error(), "ovrlrd login") {
		t.Errorf("an expired token: %v", err)
	}
	if strings.Contains(api.got(), "/auth/refresh") {
		t.Errorf("refreshed: %q", api.got())
	}
}

// Two runs holding the same token: the second finds the file's token
// changed under the lock and takes it, rather than presenting the
// superseded one again.
func TestRefreshTakesTheFilesNewerToken(t *testing.T) {
	api := newFakeAPI(t)
	d := newDesk(t)
	old := expiringIn(time.Minute)
	d.login(t, api.URL, old)
	s1, s2 := d.settings(t, common{}, io.Discard), d.settings(t, common{}, io.Discard)
	api.onRefresh = func() {
		if _, err := os.Stat(d.lockPath()); err != nil {
			t.Errorf("refreshed without the lock: %v", err)
		}
	}
	for _, s := range []*settings{&s1, &s2} {
		if err := newClient(s).call(t.Context(), "GET", "/chat", callTimeout, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if want := "POST /auth/refresh " + old + "|GET /chat new-1|GET /chat new-1"; api.got() != want {
		t.Errorf("calls %q, want %q", api.got(), want)
	}
	if got := d.savedConfig(t).Token; got != "new-1" {
		t.Errorf("the file holds %q", got)
	}
	if _, err := os.Stat(d.lockPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the lock is left: %v", err)
	}
}

// A lock held by another run is waited for; one left by a run that died
// (a minute old) is taken over.
func TestRefreshLock(t *testing.T) {
	api := newFakeAPI(t)
	d := newDesk(t)
	d.login(t, api.URL, expiringIn(time.Minute))

	if err := os.WriteFile(d.lockPath(), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s := d.settings(t, common{}, io.Discard)
	waits := 0
	s.waitLock = func(context.Context) error {
		waits++
		return os.Remove(d.lockPath()) // the other run is done
	}
	if err := newClient(&s).call(t.Context(), "GET", "/chat", callTimeout, nil, nil); err != nil || waits != 1 {
		t.Fatalf("%d waits, %v", waits, err)
	}

	d.login(t, api.URL, expiringIn(time.Minute))
	if err := os.WriteFile(d.lockPath(), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	long := time.Now().Add(-2 * time.Minute)
	if err := os.Chtimes(d.lockPath(), long, long); err != nil {
		t.Fatal(err)
	}
	s = d.settings(t, common{}, io.Discard)
	s.waitLock = func(context.Context) error { return errors.New("waited for a stale lock") }
	if err := newClient(&s).call(t.Context(), "GET", "/chat", callTimeout, nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := d.savedConfig(t).Token; got != "new-2" {
		t.Errorf("the file holds %q", got)
	}
}

// A refreshed token that cannot be saved is used all the same: the old
// one is spent.
func TestRefreshUnsavedGoesOn(t *testing.T) {
	api := newFakeAPI(t)
	d := newDesk(t)
	d.login(t, api.URL, expiringIn(time.Minute))
	path := filepath.Join(d.config, "ovrlrd", "config.json")
	api.onRefresh = func() {
		// A folder where the file was: the save's rename fails.
		if err := os.Remove(path); err != nil {
			t.Error(err)
		}
		if err := os.MkdirAll(filepath.Join(path, "x"), 0o700); err != nil {
			t.Error(err)
		}
	}
	var stderr strings.Builder
	s := d.settings(t, common{}, &stderr)
	if err := newClient(&s).call(t.Context(), "GET", "/chat", callTimeout, nil, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(api.got(), "|GET /chat new-1") || !strings.Contains(stderr.String(), "warning: the refreshed session token could not be saved") {
		t.Errorf("calls %q, stderr %q", api.got(), stderr.String())
	}
}

// The file's token goes to the file's address only.
func TestOtherURLNeedsItsToken(t *testing.T) {
	d := newDesk(t)
	d.login(t, "https://file.example.com", "file-token")
	if s, err := resolve(common{url: "https://file.example.com/"}, d.system(), io.Discard); err != nil || s.token != "file-token" {
		t.Errorf("the same address: %+v, %v", s, err)
	}
	if _, err := resolve(common{url: "https://other.example.com"}, d.system(), io.Discard); err == nil || !strings.Contains(err.Error(), "--token") {
		t.Errorf("another address: %v", err)
	}
	if s, err := resolve(common{url: "https://other.example.com", token: "other"}, d.system(), io.Discard); err != nil || s.token != "other" || s.file != "" {
		t.Errorf("another address with its token: %+v, %v", s, err)
	}
}

// --token - reads the token from stdin, and $OVRLRD_TOKEN gives one: out
// of the process list.
func TestTokenOffTheCommandLine(t *testing.T) {
	d := newDesk(t)
	d.stdin = " from-stdin \nmore\n"
	d.login(t, "https://api.example.com", "-")
	if got := d.savedConfig(t).Token; got != "from-stdin" {
		t.Errorf("saved %q", got)
	}
	d.stdin = ""
	if r := d.run(t, "login", "--token", "-"); r.code != 1 || !strings.Contains(r.stderr, "holds no token") {
		t.Errorf("no stdin: %+v", r)
	}
	d.env = map[string]string{"OVRLRD_TOKEN": "from-env"}
	if s := d.settings(t, common{}, io.Discard); s.token != "from-env" || s.file != "" {
		t.Errorf("$OVRLRD_TOKEN: %+v", s)
	}
	if s := d.settings(t, common{token: "flag"}, io.Discard); s.token != "flag" {
		t.Errorf("--token over $OVRLRD_TOKEN: %+v", s)
	}
}

// A damaged config file is written anew by login; other commands name it.
func TestCorruptConfig(t *testing.T) {
	d := newDesk(t)
	path := filepath.Join(d.config, "ovrlrd", "config.json")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(`{"url":"https://api.exa`), 0o600); err != nil {
		t.Fatal(err)
	}
	r := d.run(t, "import", sessionA)
	if r.code != 1 || !strings.Contains(r.stderr, path) || !strings.Contains(r.stderr, "run ovrlrd login") {
		t.Errorf("import: %+v", r)
	}
	r = d.run(t, "login", "--url", "https://api.example.com", "--token", "t")
	if r.code != 0 || !strings.Contains(r.stderr, "warning") || d.savedConfig(t).Token != "t" {
		t.Errorf("login: %+v", r)
	}
}

// The config replace is tried again while it fails for a reason that
// passes (Windows' access denied), and no more.
func TestRetry(t *testing.T) {
	passing := errors.New("passing")
	n := 0
	err := retry(func() error {
		if n++; n < 3 {
			return passing
		}
		return nil
	}, func(err error) bool { return err == passing }, make([]time.Duration, 5))
	if err != nil || n != 3 {
		t.Errorf("%d tries, %v", n, err)
	}
	n = 0
	if err := retry(func() error { n++; return passing }, func(error) bool { return true }, make([]time.Duration, 2)); err != passing || n != 3 {
		t.Errorf("bounded: %d tries, %v", n, err)
	}
	n = 0
	if err := retry(func() error { n++; return errors.New("other") }, func(err error) bool { return err == passing }, make([]time.Duration, 2)); err == nil || n != 1 {
		t.Errorf("another error: %d tries, %v", n, err)
	}
}
