// Package ovrlrd holds the domain: the types every other package speaks in,
// and the one error type whose code decides the HTTP status in exactly one
// place (package api). Nothing here talks to the outside world.
package ovrlrd

import (
	"errors"
	"fmt"
)

// Error codes. They name what went wrong from the caller's point of view; the
// HTTP layer maps each to a status.
const (
	EINVALID      = "invalid"      // 400: the request is malformed or fails validation
	EUNAUTHORIZED = "unauthorized" // 401: missing or bad credentials
	EFORBIDDEN    = "forbidden"    // 403: authenticated but not allowed
	ENOTFOUND     = "not_found"    // 404: absent, or not visible to this caller
	ECONFLICT     = "conflict"     // 409: the state forbids it right now (a turn is running)
	EGONE         = "gone"         // 410: it existed, and its time is over
	ETOOLARGE     = "too_large"    // 413: the body exceeds its cap
	ERATELIMIT    = "rate_limited" // 429: a limit or a budget is spent
	EUNAVAILABLE  = "unavailable"  // 503: a dependency is down; not the caller's fault
	EINTERNAL     = "internal"     // 500: a bug or an unexpected failure
)

// Error is a domain error. Message is safe to show to users; anything that
// must not reach them (driver errors, paths) stays in the wrapped Err, which
// only logs see.
type Error struct {
	Code    string
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an Error with a user-facing message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an Error carrying an internal cause that users never see.
func Wrap(code, message string, err error) *Error {
	return &Error{Code: code, Message: message, Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	if err != nil {
		return EINTERNAL
	}
	return ""
}

// ErrorMessage returns the user-facing message of err. Errors that are not
// domain errors are internal, and their text never leaves the process.
func ErrorMessage(err error) string {
	if e, ok := errors.AsType[*Error](err); ok && e.Code != EINTERNAL {
		return e.Message
	}
	return "Internal server error"
}

// IsCode reports whether err carries the given code.
func IsCode(err error, code string) bool { return ErrorCode(err) == code }
