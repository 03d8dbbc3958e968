// Package api holds the HTTP handlers of all three functions and the pieces
// they share: the one error mapper, the one strict JSON decoder, the one
// API-key check and the one way to learn the client's address.
package api

import (
	"cmp"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// statusOf is the only place a domain error code becomes an HTTP status.
var statusOf = map[string]int{
	ovrlrd.EINVALID:      http.StatusBadRequest,
	ovrlrd.EUNAUTHORIZED: http.StatusUnauthorized,
	ovrlrd.EFORBIDDEN:    http.StatusForbidden,
	ovrlrd.ENOTFOUND:     http.StatusNotFound,
	ovrlrd.ECONFLICT:     http.StatusConflict,
	ovrlrd.EGONE:         http.StatusGone,
	ovrlrd.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	ovrlrd.ERATELIMIT:    http.StatusTooManyRequests,
	ovrlrd.EUNAVAILABLE:  http.StatusServiceUnavailable,
	ovrlrd.EINTERNAL:     http.StatusInternalServerError,
}

// StatusOf returns the HTTP status for err.
func StatusOf(err error) int {
	return cmp.Or(statusOf[ovrlrd.ErrorCode(err)], http.StatusInternalServerError)
}

// errorBody is the shape of every error response.
type errorBody struct {
	Error string `json:"error"`
}

// writeError answers with {"error": "..."} and the status of err. Internal
// errors are logged with their cause; the client only ever sees the domain
// message.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	status := StatusOf(err)
	if status >= 500 {
		log.ErrorContext(r.Context(), "request failed", "method", r.Method, "route", r.Pattern, "status", status, "err", err)
	} else {
		// Why a token failed helps debugging, and no error quotes a token.
		// Validation errors are left out: they quote what the client sent.
		attrs := []any{"method", r.Method, "route", r.Pattern, "status", status}
		if status != http.StatusBadRequest && status != http.StatusRequestEntityTooLarge {
			attrs = append(attrs, "err", err)
		}
		log.DebugContext(r.Context(), "request refused", attrs...)
	}
	WriteJSON(w, status, errorBody{Error: ovrlrd.ErrorMessage(err)})
}

// reply answers err if there is one, otherwise v with 200, or 204 without
// a body when v is nil.
func (s *server) reply(w http.ResponseWriter, r *http.Request, err error, v any) {
	switch {
	case s.failed(w, r, err):
	case v == nil:
		w.WriteHeader(http.StatusNoContent)
	default:
		WriteJSON(w, http.StatusOK, v)
	}
}

// failed answers err, if there is one, and reports whether there was.
func (s *server) failed(w http.ResponseWriter, r *http.Request, err error) bool {
	if err != nil {
		writeError(w, r, s.Log, err)
	}
	return err != nil
}

// errorJSON is the status and body writeError answers err with, for an
// answer given before there is a ResponseWriter.
func errorJSON(err error) (int, string) {
	b, _ := json.Marshal(errorBody{Error: ovrlrd.ErrorMessage(err)})
	return StatusOf(err), string(b)
}

// WriteJSON writes v as the whole response. Encoding our own types cannot
// fail, so the error is only worth noting in a log, which the caller lacks;
// a broken connection is the client's loss either way. No answer is kept
// in a cache: they are one user's (transcripts among them), and a
// browser's or the app's HTTP cache would keep them on disk after the user
// signed out or deleted the account.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"Internal server error"}`)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
