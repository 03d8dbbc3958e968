package config

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// reader reads environment variables and records every problem instead of
// stopping at the first. Values it quotes in problems are settings, never
// secrets.
type reader struct {
	getenv   func(string) string
	problems []error
}

func (r *reader) problemf(format string, args ...any) {
	r.problems = append(r.problems, fmt.Errorf(format, args...))
}

// get returns the trimmed value; "" means unset.
func (r *reader) get(name string) string { return strings.TrimSpace(r.getenv(name)) }

// str returns the value, or def when unset; a set value must match p. A
// refused value is still returned, as set: the secret checks that follow
// read SSM_PREFIX, CLAUDE_PROVIDER and the APNs ids.
func (r *reader) str(name, def string, p *regexp.Regexp) string {
	return parsed(r, name, def, func(v string) (string, error) {
		if p != nil && !p.MatchString(v) {
			return v, fmt.Errorf("%q does not match %s", v, p)
		}
		return v, nil
	})
}

// parsed returns the value as parse reads it, or def when unset; parse's
// error is the problem. What parse returns with an error is kept too, but
// only str relies on it: any problem fails the load.
func parsed[T any](r *reader, name string, def T, parse func(v string) (T, error)) T {
	v := r.get(name)
	if v == "" {
		return def
	}
	x, err := parse(v)
	if err != nil {
		r.problemf("%s: %v", name, err)
	}
	return x
}

func within[T int | float64 | time.Duration](x, lo, hi T) error {
	if x < lo || x > hi {
		return fmt.Errorf("%v is out of range (%v to %v)", x, lo, hi)
	}
	return nil
}

// list splits on sep, trims, and drops empty entries; unset means def. keep,
// if given, vets each set entry: it returns the entry to keep, or records a
// problem and returns "".
func (r *reader) list(name, sep string, def []string, keep func(name, e string) string) []string {
	v := r.get(name)
	if v == "" {
		return append([]string(nil), def...)
	}
	var out []string
	for _, e := range strings.Split(v, sep) {
		if e = strings.TrimSpace(e); e != "" && keep != nil {
			e = keep(name, e)
		}
		if e != "" {
			out = append(out, e)
		}
	}
	return out
}

func (r *reader) boolean(name string, def bool) bool {
	return parsed(r, name, def, func(v string) (bool, error) {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, fmt.Errorf("%q is not a boolean (use true or false)", v)
		}
		return b, nil
	})
}

var bareNumber = regexp.MustCompile(`^[+-]?[0-9]+(\.[0-9]*)?$`)

// duration accepts Go syntax (90s, 2m) in (0, limit]. A bare number is
// refused rather than guessed: is "900" seconds or milliseconds?
func (r *reader) duration(name string, def, limit time.Duration) time.Duration {
	return parsed(r, name, def, func(v string) (time.Duration, error) {
		if bareNumber.MatchString(v) {
			return 0, fmt.Errorf("%q has no unit; add one, e.g. %ss", v, v)
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration (use e.g. 90s or 2m)", v)
		}
		return d, within(d, 1, limit)
	})
}

// number reads a T in [lo, hi]; what names T in the problem ("an
// integer", "a number"), and an int refuses a fraction.
func number[T int | float64](r *reader, name, what string, def, lo, hi T) T {
	return parsed(r, name, def, func(v string) (T, error) {
		f, err := strconv.ParseFloat(v, 64)
		if n := T(f); err == nil && float64(n) == f {
			return n, within(n, lo, hi)
		}
		return 0, fmt.Errorf("%q is not %s", v, what)
	})
}

// url returns an absolute http(s) URL, or def when unset; httpsOnly refuses
// plain http (allowed outside prod for loopback stand-ins).
func (r *reader) url(name, def string, httpsOnly bool) string {
	return parsed(r, name, def, func(v string) (string, error) {
		u, err := url.Parse(v)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
			// Not quoted: a malformed URL may still hold a password.
			return "", errors.New("not an absolute http(s) URL")
		case u.User != nil:
			return "", errors.New("must not carry credentials")
		case httpsOnly && u.Scheme != "https":
			return "", errors.New("must use https in prod")
		}
		return v, nil
	})
}

// absPath returns a cleaned absolute path.
func (r *reader) absPath(name, v string) string {
	if !filepath.IsAbs(v) {
		r.problemf("%s: %q is not an absolute path", name, v)
		return ""
	}
	return filepath.Clean(v)
}
