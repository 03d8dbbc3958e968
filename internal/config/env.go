package config

import (
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

func (r *reader) str(name, def string) string {
	if v := r.get(name); v != "" {
		return v
	}
	return def
}

// required returns the value, or records that it is missing when need holds
// and returns def.
func (r *reader) required(name string, need bool, why, def string) string {
	v := r.get(name)
	if v == "" && need {
		r.problemf("%s: required %s", name, why)
	}
	if v == "" {
		return def
	}
	return v
}

// list splits on sep, trims, and drops empty entries; unset means def.
func (r *reader) list(name, sep string, def []string) []string {
	v := r.get(name)
	if v == "" {
		return append([]string(nil), def...)
	}
	var out []string
	for _, e := range strings.Split(v, sep) {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

func (r *reader) boolean(name string, def bool) bool {
	v := r.get(name)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.problemf("%s: %q is not a boolean (use true or false)", name, v)
		return def
	}
	return b
}

var bareNumber = regexp.MustCompile(`^[+-]?[0-9]+(\.[0-9]*)?$`)

// duration accepts Go syntax (90s, 2m) in (0, limit]. A bare number is
// refused rather than guessed: is "900" seconds or milliseconds?
func (r *reader) duration(name string, def, limit time.Duration) time.Duration {
	v := r.get(name)
	if v == "" {
		return def
	}
	if bareNumber.MatchString(v) {
		r.problemf("%s: %q has no unit; add one, e.g. %ss", name, v, v)
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.problemf("%s: %q is not a duration (use e.g. 90s or 2m)", name, v)
		return def
	}
	if d <= 0 || d > limit {
		r.problemf("%s: %v is out of range (above 0, at most %v)", name, d, limit)
		return def
	}
	return d
}

func (r *reader) integer(name string, def, lo, hi int) int {
	v := r.get(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		r.problemf("%s: %q is not an integer", name, v)
		return def
	}
	if n < lo || n > hi {
		r.problemf("%s: %d is out of range (%d to %d)", name, n, lo, hi)
		return def
	}
	return n
}

// number reads a decimal in [lo, hi].
func (r *reader) number(name string, def, lo, hi float64) float64 {
	v := r.get(name)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f != f {
		r.problemf("%s: %q is not a number", name, v)
		return def
	}
	if f < lo || f > hi {
		r.problemf("%s: %v is out of range (%v to %v)", name, f, lo, hi)
		return def
	}
	return f
}

// url returns an absolute http(s) URL, or "" for unset; httpsOnly refuses
// plain http (allowed outside prod for loopback stand-ins).
func (r *reader) url(name, def string, httpsOnly bool) string {
	v := r.str(name, def)
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		// Not quoted: a malformed URL may still hold a password.
		r.problemf("%s: not an absolute http(s) URL", name)
	case u.User != nil:
		r.problemf("%s: must not carry credentials", name)
	case httpsOnly && u.Scheme != "https":
		r.problemf("%s: must use https in prod", name)
	default:
		return v
	}
	return ""
}

// absPath returns a cleaned absolute path.
func (r *reader) absPath(name, v string) string {
	if !filepath.IsAbs(v) {
		r.problemf("%s: %q is not an absolute path", name, v)
		return ""
	}
	return filepath.Clean(v)
}
